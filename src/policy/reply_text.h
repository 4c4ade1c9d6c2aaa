#pragma once

#include <string>
#include <string_view>

#include "util/clock.h"

namespace greylight::policy {

inline constexpr std::string_view kDefaultGreylistAction = "DEFER_IF_PERMIT";
inline constexpr std::string_view kDefaultGreylistText =
    "Greylisted, see http://postgrey.schweikert.ch/help/%r.html";
inline constexpr std::string_view kDefaultXGreylistHeader =
    "X-Greylist: delayed %t seconds by greylight-%v at %h; %d";

// Replaces the first occurrence of `placeholder` in `text` at or after `from`, as Perl's s///
// does.
void ReplaceFirst(std::string& text, std::string_view placeholder, std::string_view value,
                  size_t from = 0);

// The greylisting action (postgrey 5.1): "<action> [4.2.0 ]<text>" with the first %s
// replaced by the seconds missing and the first %r by the recipient's domain. The "4.2.0 "
// prefix is added when the request defined etrn_domain and the text does not start with a
// digit (an Exchange workaround postgrey keeps).
std::string GreylistAction(std::string_view action, std::string_view text, bool etrn_defined,
                           Seconds missing, std::string_view recipient);

// The X-Greylist header text with the first %t, %v, %d and %h replaced, in that order.
std::string XGreylistHeader(std::string_view header_template, Seconds delayed,
                            std::string_view version, std::string_view date,
                            std::string_view hostname);

// The header date: local time as "%a, %d %b %Y %T %Z" with English names.
std::string HeaderDate(UnixTime time);

}  // namespace greylight::policy
