#include "whitelist/regex_entry.h"

#include <algorithm>

#include "util/ascii.h"

namespace greylight::whitelist {
namespace {

// True if the character at `pos` is escaped: preceded by an odd run of backslashes.
bool Escaped(std::string_view body, size_t pos) {
  size_t backslashes = 0;
  while (pos > backslashes && body[pos - 1 - backslashes] == '\\') ++backslashes;
  return backslashes % 2 == 1;
}

}  // namespace

// The literal text, lowercased, that ends every subject the case-insensitive `body` can
// match, or "" when the pattern does not pin one down. Almost every entry of postgrey's
// client list has this shape (/^mail\d+\.telekom\.de$/ ends with ".telekom.de"), and a
// suffix comparison rejects nearly every client name at a fraction of a regex call.
// Deliberately conservative: only patterns that end in an unescaped '$' (no subject has a
// newline: requests are split on them), without alternation, (*VERB)s, inline options other
// than (?:...), or escapes that spell a character by code (\x41, \101, \Q...\E); the literal
// run before '$' holds only plain characters and backslash-escaped punctuation, and stops
// at the first metacharacter, so a quantifier (which follows its atom) is never crossed.
std::string RequiredSuffix(std::string_view body) {
  if (body.size() < 2 || body.back() != '$' || Escaped(body, body.size() - 1)) return {};
  // Alternation, and (*VERB)s: (*ACCEPT) ends a match early, (*UTF) folds case beyond
  // ASCII, (*CR) and friends let '$' match before other line ends.
  if (body.find('|') != std::string_view::npos) return {};
  if (body.find("(*") != std::string_view::npos) return {};
  for (size_t at = body.find("(?"); at != std::string_view::npos; at = body.find("(?", at + 2)) {
    if (at + 2 >= body.size() || body[at + 2] != ':') return {};
  }
  for (size_t at = body.find('\\'); at != std::string_view::npos && at + 1 < body.size();
       at = body.find('\\', at + 2)) {
    if (std::string_view("xocNpPQEgku0123456789").find(body[at + 1]) != std::string_view::npos) {
      return {};
    }
  }
  auto plain = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("-_@%/=!~'\",;:<>&`#").find(c) != std::string_view::npos;
  };
  std::string suffix;
  size_t i = body.size() - 1;  // the '$'
  while (i > 0) {
    char c = body[i - 1];
    if (plain(c) && !Escaped(body, i - 1)) {
      suffix.push_back(AsciiLower(c));
      --i;
    } else if (std::ispunct(static_cast<unsigned char>(c)) && Escaped(body, i - 1)) {
      suffix.push_back(c);  // "\." is a literal '.'
      i -= 2;
    } else {
      break;
    }
  }
  std::reverse(suffix.begin(), suffix.end());
  return suffix;
}

Result<CompiledRegex> CompileRegex(EntryId id, std::string_view body) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  RegexCode code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(body.data()), body.size(),
                               PCRE2_CASELESS, &error_code, &error_offset, nullptr));
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return Status::InvalidArgument("invalid regex /" + std::string(body) +
                                   "/: " + reinterpret_cast<const char*>(message) + " at offset " +
                                   std::to_string(error_offset));
  }
  // Failure only means no JIT on this platform; pcre2_match then interprets.
  bool jit = pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE) == 0;
  return CompiledRegex{id, std::move(code), jit, RequiredSuffix(body)};
}

// The Whitelists object is shared by all threads, so match scratch space is per thread.
// One ovector pair suffices: we only ask whether there is a match (pcre2_match returns
// 0, still a match, when captures do not fit).
bool RegexMatches(const CompiledRegex& regex, std::string_view subject) {
  thread_local std::unique_ptr<pcre2_match_data, MatchDataDeleter> match_data(
      pcre2_match_data_create(1, nullptr));
  if (!match_data) return false;
  auto text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // A negative result other than "no match" (e.g. the match limit on a pathological
  // pattern) also counts as no match: whitelisting is never granted by an error.
  int result =
      regex.jit
          ? pcre2_jit_match(regex.code.get(), text, subject.size(), 0, 0, match_data.get(), nullptr)
          : pcre2_match(regex.code.get(), text, subject.size(), 0, 0, match_data.get(), nullptr);
  return result >= 0;
}

EntryId FirstRegexMatch(const std::vector<CompiledRegex>& regexes, std::string_view subject,
                        std::string_view lowered, EntryId best) {
  for (const CompiledRegex& regex : regexes) {
    if (regex.id >= best) break;  // sorted by id: nothing earlier can follow
    if (!lowered.ends_with(regex.required_suffix)) continue;
    if (RegexMatches(regex, subject)) return regex.id;
  }
  return best;
}

}  // namespace greylight::whitelist
