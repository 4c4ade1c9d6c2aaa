#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace greylight::cli {

// One command-line option. This table is the single source for parsing, --help and the
// man page (a test checks the man page against it).
struct OptionSpec {
  enum class Arity {
    kFlag,           // no value
    kValue,          // one value; the last one given wins
    kRepeated,       // one value per occurrence, all kept
    kOptionalValue,  // a value may follow after '=' or as the next argument
  };
  std::string_view names;  // "-i,--inet": short and long spellings, aliases
  Arity arity;
  std::string_view value_name;  // "PORT"; empty for flags
  std::string_view default_text;
  std::string_view help;
  std::string_view section;  // "postgrey" or "greylight": where the option comes from
};

// The options as given: for each option (by its first long name, without dashes), every
// value in order; flags and value-less optional options get one empty string per use.
struct ParsedOptions {
  std::map<std::string, std::vector<std::string>, std::less<>> values;

  bool Has(std::string_view name) const { return values.contains(name); }
  // The last value of `name`, or `fallback` if it was not given.
  std::string_view Last(std::string_view name, std::string_view fallback = {}) const;
  const std::vector<std::string>& All(std::string_view name) const;
};

// The first long name of `spec` without dashes ("inet" for "-i,--inet").
std::string PrimaryName(const OptionSpec& spec);
// All spellings of `spec` with dashes ({"-i", "--inet"}).
std::vector<std::string> Spellings(const OptionSpec& spec);

// Parses `args` (without the program name) against `table` with postgrey's Getopt::Long
// rules: "--opt=value" or "--opt value", no abbreviations, no bundling, case-sensitive.
Result<ParsedOptions> ParseOptions(std::span<const OptionSpec> table,
                                   const std::vector<std::string>& args);

// The option list of --help, one entry per option, from `table`.
std::string FormatOptionHelp(std::span<const OptionSpec> table);

}  // namespace greylight::cli
