#pragma once

// SPF macro-strings (RFC 7208 section 7): parsed once with the record, expanded for each
// check. No I/O.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace greylight::spf {

// A macro-string split into literal text, escapes ("%%", "%_", "%-") and macros
// ("%{ir.}").
class MacroString {
 public:
  // Which macro letters a string may use: "c", "r" and "t" belong to explanation text
  // only (RFC 7208 section 7.1), never to a domain-spec.
  enum class Letters { kDomainSpec, kAll };

  // Parses `text`; nullopt on a syntax error: a '%' not followed by '{', '%', '_' or '-',
  // an unknown or disallowed letter, a zero digit transformer, an unclosed macro, or a
  // character outside %x21-7E.
  static std::optional<MacroString> Parse(std::string_view text, Letters letters);

  // True if this is a domain-spec (RFC 7208 section 7.1): not empty, and ending in a
  // macro or escape, or in "." toplabel with an optional trailing dot, where a toplabel
  // is letters, digits and inner dashes and is not all digits.
  bool IsDomainSpec() const;
  // True if the macro `letter` (lowercase) appears.
  bool Uses(char letter) const;

  const std::string& text() const { return text_; }

  // The values macros expand to, for one check_host() call.
  struct Values {
    std::string sender;          // s: local-part@domain
    std::string local_part;      // l
    std::string sender_domain;   // o
    std::string domain;          // d: the domain being checked
    std::string ip;              // i: dotted quad, or 32 dot-separated nibbles for IPv6
    std::string validated_name;  // p: only needed if Uses('p'); "unknown" if none
    std::string ip_version;      // v: "in-addr" or "ip6"
    std::string helo;            // h
  };
  // The expansion: each macro's value split on its delimiters, reversed with "r", cut
  // to its rightmost parts with a digit, joined with dots, and URL-escaped if its letter
  // is uppercase. "c", "r" and "t" expand to nothing: explanations are never expanded.
  std::string Expand(const Values& values) const;

 private:
  struct Token {
    enum class Kind { kLiteral, kEscape, kMacro };
    Kind kind = Kind::kLiteral;
    std::string text;         // kLiteral, kEscape: what it stands for
    char letter = 0;          // kMacro, lowercase
    bool url_escape = false;  // the letter was uppercase
    int keep = 0;             // rightmost parts to keep; 0: all
    bool reverse = false;
    std::string delimiters;  // "" means "."
  };
  std::vector<Token> tokens_;
  std::string text_;
};

// The target name a domain-spec expands to, ready to query: the expansion without a
// trailing dot, lowercase, and cut to at most 253 characters by removing whole labels
// from the left (RFC 7208 section 7.3).
std::string ExpandDomain(const MacroString& spec, const MacroString::Values& values);

// True if `name` can be queried: 1 to 253 characters, labels of 1 to 63 characters.
bool QueryableName(std::string_view name);

}  // namespace greylight::spf
