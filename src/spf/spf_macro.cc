#include "spf/spf_macro.h"

#include <algorithm>
#include "util/ascii.h"

namespace greylight::spf {
namespace {

constexpr size_t kMaxDomainLength = 253;  // RFC 7208 section 7.3, without the root dot
constexpr size_t kMaxLabelLength = 63;    // RFC 1035 section 2.3.4
constexpr int kMaxKeepDigits = 3;         // "%{d128}" is the most anyone needs

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsDelimiter(char c) { return std::string_view(".-+,/_=").find(c) != std::string_view::npos; }

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool IsTopLabel(std::string_view label) {
  if (label.empty()) return false;
  if (std::all_of(label.begin(), label.end(), IsAlnum)) {
    return std::any_of(label.begin(), label.end(), IsAlpha);
  }
  return IsAlnum(label.front()) && IsAlnum(label.back()) &&
         std::all_of(label.begin(), label.end(), [](char c) { return IsAlnum(c) || c == '-'; });
}

// RFC 3986 unreserved characters pass; everything else becomes %XX.
std::string UrlEscape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    if (IsAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
  return out;
}

}  // namespace

std::optional<MacroString> MacroString::Parse(std::string_view text, Letters letters) {
  const std::string_view allowed =
      letters == Letters::kDomainSpec ? std::string_view("slodipvh") : "slodipvhcrt";
  MacroString result;
  result.text_ = std::string(text);
  auto literal = [&](std::string_view chars) {
    if (result.tokens_.empty() || result.tokens_.back().kind != Token::Kind::kLiteral) {
      result.tokens_.push_back({});
    }
    result.tokens_.back().text.append(chars);
  };
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c < 0x21 || c > 0x7E) return std::nullopt;
    if (c != '%') {
      literal(text.substr(i, 1));
      ++i;
      continue;
    }
    if (i + 1 >= text.size()) return std::nullopt;
    const char next = text[i + 1];
    if (next == '%' || next == '_' || next == '-') {
      Token escape;
      escape.kind = Token::Kind::kEscape;
      escape.text = std::string(next == '%'   ? std::string_view("%")
                                : next == '_' ? std::string_view(" ")
                                              : std::string_view("%20"));
      result.tokens_.push_back(escape);
      i += 2;
      continue;
    }
    if (next != '{') return std::nullopt;
    i += 2;
    if (i >= text.size()) return std::nullopt;
    Token macro;
    macro.kind = Token::Kind::kMacro;
    macro.letter = AsciiLower(text[i]);
    macro.url_escape = text[i] != macro.letter;
    if (!IsAlpha(text[i]) || allowed.find(macro.letter) == std::string_view::npos) {
      return std::nullopt;
    }
    ++i;
    int digits = 0;
    while (i < text.size() && IsDigit(text[i])) {
      if (++digits > kMaxKeepDigits) return std::nullopt;
      macro.keep = macro.keep * 10 + (text[i] - '0');
      ++i;
    }
    if (digits > 0 && macro.keep == 0) return std::nullopt;  // "the value MUST be nonzero"
    if (i < text.size() && AsciiLower(text[i]) == 'r') {
      macro.reverse = true;
      ++i;
    }
    while (i < text.size() && IsDelimiter(text[i])) macro.delimiters.push_back(text[i++]);
    if (i >= text.size() || text[i] != '}') return std::nullopt;
    ++i;
    result.tokens_.push_back(std::move(macro));
  }
  return result;
}

bool MacroString::IsDomainSpec() const {
  if (tokens_.empty()) return false;
  const Token& last = tokens_.back();
  if (last.kind != Token::Kind::kLiteral) return true;  // ends in a macro-expand
  std::string_view tail = last.text;
  if (tail.ends_with('.')) tail.remove_suffix(1);
  const size_t dot = tail.rfind('.');
  return dot != std::string_view::npos && IsTopLabel(tail.substr(dot + 1));
}

bool MacroString::Uses(char letter) const {
  return std::any_of(tokens_.begin(), tokens_.end(), [letter](const Token& token) {
    return token.kind == Token::Kind::kMacro && token.letter == letter;
  });
}

std::string MacroString::Expand(const Values& values) const {
  std::string out;
  for (const Token& token : tokens_) {
    if (token.kind != Token::Kind::kMacro) {
      out.append(token.text);
      continue;
    }
    std::string_view value;
    switch (token.letter) {
      case 's':
        value = values.sender;
        break;
      case 'l':
        value = values.local_part;
        break;
      case 'o':
        value = values.sender_domain;
        break;
      case 'd':
        value = values.domain;
        break;
      case 'i':
        value = values.ip;
        break;
      case 'p':
        value = values.validated_name;
        break;
      case 'v':
        value = values.ip_version;
        break;
      case 'h':
        value = values.helo;
        break;
      default:
        break;  // c, r, t: explanation text only, never expanded here
    }
    const std::string_view delimiters =
        token.delimiters.empty() ? std::string_view(".") : std::string_view(token.delimiters);
    std::vector<std::string_view> parts;
    size_t start = 0;
    for (size_t i = 0; i <= value.size(); ++i) {
      if (i == value.size() || delimiters.find(value[i]) != std::string_view::npos) {
        parts.push_back(value.substr(start, i - start));
        start = i + 1;
      }
    }
    if (token.reverse) std::reverse(parts.begin(), parts.end());
    if (token.keep > 0 && static_cast<size_t>(token.keep) < parts.size()) {
      parts.erase(parts.begin(), parts.end() - token.keep);
    }
    std::string joined;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) joined.push_back('.');
      joined.append(parts[i]);
    }
    out.append(token.url_escape ? UrlEscape(joined) : joined);
  }
  return out;
}

std::string ExpandDomain(const MacroString& spec, const MacroString::Values& values) {
  std::string name = spec.Expand(values);
  if (name.ends_with('.')) name.pop_back();
  for (char& c : name) c = AsciiLower(c);
  while (name.size() > kMaxDomainLength) {
    const size_t dot = name.find('.');
    if (dot == std::string::npos) return name;  // one long label: QueryableName refuses it
    name.erase(0, dot + 1);
  }
  return name;
}

bool QueryableName(std::string_view name) {
  if (name.empty() || name.size() > kMaxDomainLength) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (++label > kMaxLabelLength) {
      return false;
    }
  }
  return label > 0;
}

}  // namespace greylight::spf
