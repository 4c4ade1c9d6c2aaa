#include "policy/reply_text.h"

#include <fmt/format.h>
#include <time.h>

#include <array>
#include <charconv>

#include "util/log.h"

namespace greylight::policy {

void ReplaceFirst(std::string& text, std::string_view placeholder, std::string_view value,
                  size_t from) {
  size_t at = text.find(placeholder, from);
  if (at != std::string::npos) text.replace(at, placeholder.size(), value);
}

// Built in one string, without formatting: every greylisted request answers with it.
std::string GreylistAction(std::string_view action, std::string_view text, bool etrn_defined,
                           Seconds missing, std::string_view recipient) {
  std::string reply;
  reply.reserve(action.size() + text.size() + 32);
  reply.append(action).push_back(' ');
  const size_t message_at = reply.size();  // placeholders are looked for from here on
  if (etrn_defined && !(!text.empty() && text[0] >= '0' && text[0] <= '9')) {
    reply.append("4.2.0 ");
  }
  reply.append(text);
  char digits[24];  // a 64-bit count has at most 20 digits and a sign
  char* digits_end = std::to_chars(digits, digits + sizeof digits, missing.count()).ptr;
  ReplaceFirst(reply, "%s", std::string_view(digits, digits_end - digits), message_at);
  size_t at = recipient.rfind('@');
  ReplaceFirst(reply, "%r", at == std::string_view::npos ? recipient : recipient.substr(at + 1),
               message_at);
  return reply;
}

std::string XGreylistHeader(std::string_view header_template, Seconds delayed,
                            std::string_view version, std::string_view date,
                            std::string_view hostname) {
  std::string header(header_template);
  ReplaceFirst(header, "%t", fmt::format("{}", delayed.count()));
  ReplaceFirst(header, "%v", version);
  ReplaceFirst(header, "%d", date);
  ReplaceFirst(header, "%h", hostname);
  return header;
}

std::string HeaderDate(UnixTime time) {
  // Names are spelled out here instead of strftime's %a/%b so that the result is English
  // whatever the process locale.
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(ToUnixSeconds(time));
  struct tm local;
  localtime_r(&t, &local);
  char rest[64];
  strftime(rest, sizeof(rest), "%Y %H:%M:%S %Z", &local);
  return fmt::format("{}, {:02} {} {}", kDays[local.tm_wday], local.tm_mday, kMonths[local.tm_mon],
                     rest);
}

}  // namespace greylight::policy
