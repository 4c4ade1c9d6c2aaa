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

// True if `body` may have a '|' outside every group, which would let a match end in either
// alternative. Conservative: a form this scan does not follow (an unbalanced group, an
// unclosed class, a '[' inside a class, as in POSIX's [:alpha:]) counts as alternation.
bool MayAlternateOutsideGroups(std::string_view body) {
  int depth = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c == '\\') {
      ++i;  // the escaped character, whatever it is
    } else if (c == '[') {
      // A class: a ']' right after "[" or "[^" is a member, not its end.
      size_t j = i + 1;
      if (j < body.size() && body[j] == '^') ++j;
      if (j < body.size() && body[j] == ']') ++j;
      for (; j < body.size() && body[j] != ']'; ++j) {
        if (body[j] == '[') return true;
        if (body[j] == '\\') ++j;
      }
      if (j >= body.size()) return true;
      i = j;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return true;
    } else if (c == '|' && depth == 0) {
      return true;
    }
  }
  return depth != 0;
}

}  // namespace

// The literal text, lowercased, that ends every subject the case-insensitive `body` can
// match, or "" when the pattern does not pin one down. Almost every entry of postgrey's
// client list has this shape (/^mail\d+\.telekom\.de$/ ends with ".telekom.de"), and a
// suffix comparison rejects nearly every client name at a fraction of a regex call.
// Deliberately conservative: only patterns that end in an unescaped '$' (no subject has a
// newline: requests are split on them), without alternation outside a group, (*VERB)s,
// inline options other than (?:...), or escapes that spell a character by code (\x41, \101,
// \Q...\E); the literal run before '$' holds only plain characters, backslash-escaped
// punctuation and unescaped '.' (kAnyCharacter: any one character, as no subject has a
// newline), and stops at the first other metacharacter, so a quantifier (which follows its
// atom) is never crossed, nor the ']' that would end a class around the run.
std::string RequiredSuffix(std::string_view body) {
  if (body.size() < 2 || body.back() != '$' || Escaped(body, body.size() - 1)) return {};
  // (*ACCEPT) ends a match early, (*UTF) folds case beyond ASCII, (*CR) and friends let '$'
  // match before other line ends.
  if (MayAlternateOutsideGroups(body)) return {};
  if (body.find("(*") != std::string_view::npos) return {};
  for (size_t at = body.find("(?"); at != std::string_view::npos; at = body.find("(?", at + 2)) {
    if (at + 2 >= body.size() || body[at + 2] != ':') return {};
  }
  // These escapes also keep MayAlternateOutsideGroups right, which skips one byte after a
  // backslash: \c( and \c[ spell a character with the byte after 'c', and \Q...\E quotes
  // whole runs, where the scan would see a group, a class or a '|'.
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
    } else if (c == '.' && !Escaped(body, i - 1)) {
      suffix.push_back(kAnyCharacter);
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

bool EndsWithRequiredSuffix(std::string_view lowered, std::string_view suffix) {
  if (lowered.size() < suffix.size()) return false;
  const char* tail = lowered.data() + (lowered.size() - suffix.size());
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (suffix[i] != kAnyCharacter && suffix[i] != tail[i]) return false;
  }
  return true;
}

namespace {

struct CompileContextDeleter {
  void operator()(pcre2_compile_context* context) const { pcre2_compile_context_free(context); }
};

// Perl's line end (postgrey's), whatever default this libpcre2 was built with: '$' matches at
// the end or before a final LF only, as RequiredSuffix assumes. Null if out of memory.
pcre2_compile_context* PerlNewlineContext() {
  static const std::unique_ptr<pcre2_compile_context, CompileContextDeleter> context = [] {
    std::unique_ptr<pcre2_compile_context, CompileContextDeleter> created(
        pcre2_compile_context_create(nullptr));
    if (created) pcre2_set_newline(created.get(), PCRE2_NEWLINE_LF);
    return created;
  }();
  return context.get();
}

}  // namespace

Result<CompiledRegex> CompileRegex(EntryId id, std::string_view body) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  RegexCode code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(body.data()), body.size(),
                               PCRE2_CASELESS, &error_code, &error_offset, PerlNewlineContext()));
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

std::optional<uint16_t> RegexList::KeyOf(std::string_view tail) {
  if (tail.size() < 2) return std::nullopt;
  const char before_last = tail[tail.size() - 2];
  const char last = tail.back();
  if (before_last == kAnyCharacter || last == kAnyCharacter) return std::nullopt;
  return static_cast<uint16_t>(static_cast<unsigned char>(before_last) << 8 |
                               static_cast<unsigned char>(last));
}

void RegexList::Add(CompiledRegex regex) {
  const auto position = static_cast<uint32_t>(regexes_.size());
  const std::optional<uint16_t> key = KeyOf(regex.required_suffix);
  regexes_.push_back(std::move(regex));
  if (!key) {
    unkeyed_.push_back(position);
    for (auto& [other_key, positions] : keyed_) positions.push_back(position);
    return;
  }
  auto [it, inserted] = keyed_.try_emplace(*key, unkeyed_);
  it->second.push_back(position);
}

EntryId RegexList::FirstMatch(std::string_view subject, std::string_view lowered,
                              EntryId best) const {
  const Positions* candidates = &unkeyed_;
  if (!keyed_.empty()) {
    if (std::optional<uint16_t> key = KeyOf(lowered)) {
      auto it = keyed_.find(*key);
      if (it != keyed_.end()) candidates = &it->second;
    }
  }
  for (uint32_t position : *candidates) {
    const CompiledRegex& regex = regexes_[position];
    if (regex.id >= best) break;  // in id order: nothing earlier can follow
    if (!EndsWithRequiredSuffix(lowered, regex.required_suffix)) continue;
    if (RegexMatches(regex, subject)) return regex.id;
  }
  return best;
}

}  // namespace greylight::whitelist
