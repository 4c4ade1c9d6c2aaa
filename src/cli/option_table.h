#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
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
  // Each value option's default_text from the table.
  std::map<std::string, std::string_view, std::less<>> defaults;

  bool Has(std::string_view name) const { return values.contains(name); }
  // The last value of `name`, or `fallback` if it was not given.
  std::string_view Last(std::string_view name, std::string_view fallback = {}) const;
  // The last value of `name`, or its table default if it was not given, so a default is
  // written once: in the table that --help and the man page show.
  std::string_view LastOrDefault(std::string_view name) const;
  const std::vector<std::string>& All(std::string_view name) const;
};

// Parses `text` as an integer from `min` to `max` in `base`; the error names --option.
template <typename Integer>
Result<Integer> ParseInteger(std::string_view option, std::string_view text, Integer min,
                             Integer max, int base = 10);

// Reads integer options into their destinations, converted to the destination's type (a
// count, or a duration whose unit is the option's), and keeps the first error:
//   IntegerOptions numbers(options);
//   numbers.Set("idle-timeout", 1LL, 604800LL, config.idle_timeout);  // std::chrono::seconds
//   numbers.Set<std::chrono::days>("max-age", 1LL, 3650LL, timing.max_age);
//   if (!numbers.status().ok()) return numbers.status();
class IntegerOptions {
 public:
  explicit IntegerOptions(const ParsedOptions& options) : options_(options) {}

  // Sets `out` from option `name` (its table default when not given), unless an earlier
  // Set failed. `Unit` is the option's unit when it differs from Out's (days into seconds).
  template <typename Unit = void, typename Integer, typename Out>
  void Set(std::string_view name, Integer min, Integer max, Out& out, int base = 10) {
    if (!status_.ok()) return;
    Result<Integer> value =
        ParseInteger<Integer>(name, options_.LastOrDefault(name), min, max, base);
    if (!value.ok()) {
      status_ = value.status();
    } else if constexpr (std::is_void_v<Unit>) {
      out = static_cast<Out>(*value);
    } else {
      out = Unit(*value);
    }
  }
  const Status& status() const { return status_; }

 private:
  const ParsedOptions& options_;
  Status status_ = Status::Ok();
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
