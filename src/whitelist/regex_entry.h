#pragma once

// The /regex/ entries of the whitelists: PCRE2 compiled as postgrey's Perl does, and the
// literal-suffix shortcut that skips the regex call for most subjects. Internal to
// src/whitelist.

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "util/status.h"
#include "whitelist/entries.h"

namespace greylight::whitelist {

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

using RegexCode = std::unique_ptr<pcre2_code, CodeDeleter>;

struct CompiledRegex {
  EntryId id;
  RegexCode code;
  bool jit;  // JIT-compiled: matched with pcre2_jit_match, which skips pcre2_match's checks
  // Lowercase text every match ends with (see RequiredSuffix); empty if none is known.
  std::string required_suffix;
};

// In a required suffix, the character that stands for any one character: an unescaped '.'
// of the pattern. Never a literal there, which are letters, digits and punctuation.
inline constexpr char kAnyCharacter = '\0';

// The lowercase text every match of `body` must end with, when the pattern's form proves
// one (an unescaped '$' at the end, no alternation outside a group, no verbs, no inline
// options, no code escapes), with kAnyCharacter for each unescaped '.'; empty otherwise.
std::string RequiredSuffix(std::string_view body);

// True if `lowered` ends with `suffix`, kAnyCharacter matching any one character.
bool EndsWithRequiredSuffix(std::string_view lowered, std::string_view suffix);

// Compiles a postgrey /regex/ body: Perl syntax, case-insensitive (postgrey's qr{...}i),
// byte semantics (no UTF), JIT-compiled when the platform supports it.
Result<CompiledRegex> CompileRegex(EntryId id, std::string_view body);

// True if `regex` matches `subject`. Thread-safe (per-thread match data).
bool RegexMatches(const CompiledRegex& regex, std::string_view subject);

// The /regex/ entries of one list, in id order, indexed by the last two characters of their
// required suffix: a subject is compared only with the regexes whose suffix ends in its own
// last two characters, and those without such a suffix, instead of with every one.
class RegexList {
 public:
  // `regex.id` must be above every id added before.
  void Add(CompiledRegex regex);

  // The id of the first regex below `best` that matches `subject`, else `best`. `lowered`
  // is `subject` in ASCII lowercase, for the required suffixes; PCRE2 gets the subject as
  // sent.
  EntryId FirstMatch(std::string_view subject, std::string_view lowered, EntryId best) const;

 private:
  // Positions in regexes_, ascending. Each keyed list also holds every unkeyed position.
  using Positions = std::vector<uint32_t>;
  static std::optional<uint16_t> KeyOf(std::string_view tail);

  std::vector<CompiledRegex> regexes_;
  Positions unkeyed_;  // no required suffix of two characters that are both fixed
  std::unordered_map<uint16_t, Positions> keyed_;
};

}  // namespace greylight::whitelist
