#pragma once

#include <string>
#include <string_view>

namespace greylight {

// ASCII case folding, as postgrey's keys, DNS names and mail domains need it: bytes outside
// A-Z are left as they are (no locale, no UTF-8 folding).
constexpr char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool AsciiIsDigit(char c) { return c >= '0' && c <= '9'; }

inline void AsciiLowerInPlace(std::string& text) {
  for (char& c : text) c = AsciiLower(c);
}

inline std::string AsciiLowered(std::string_view text) {
  std::string lowered(text);
  AsciiLowerInPlace(lowered);
  return lowered;
}

}  // namespace greylight
