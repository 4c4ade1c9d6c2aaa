#pragma once

// The /regex/ entries of the whitelists: PCRE2 compiled as postgrey's Perl does, and the
// literal-suffix shortcut that skips the regex call for most subjects. Internal to
// src/whitelist.

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <string>
#include <string_view>
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

// The lowercase text every match of `body` must end with, when the pattern's form proves
// one (an unescaped '$' at the end, no alternation, no verbs, no inline options, no code
// escapes); empty otherwise.
std::string RequiredSuffix(std::string_view body);

// Compiles a postgrey /regex/ body: Perl syntax, case-insensitive (postgrey's qr{...}i),
// byte semantics (no UTF), JIT-compiled when the platform supports it.
Result<CompiledRegex> CompileRegex(EntryId id, std::string_view body);

// True if `regex` matches `subject`. Thread-safe (per-thread match data).
bool RegexMatches(const CompiledRegex& regex, std::string_view subject);

// The id of the first of `regexes` (sorted by id) below `best` that matches `subject`,
// else `best`. `lowered` is `subject` in ASCII lowercase, for the required-suffix
// shortcut; PCRE2 gets the subject as sent.
EntryId FirstRegexMatch(const std::vector<CompiledRegex>& regexes, std::string_view subject,
                        std::string_view lowered, EntryId best);

}  // namespace greylight::whitelist
