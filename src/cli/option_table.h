#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "util/status.h"

namespace greylight::cli {

// One command-line option. This table is the single source for parsing, --help and the man
// pages (man/make_greylightd_8.py and man/make_greylight_1.py write each option's
// spelling, value, default and range from --help; a test checks them).
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
  // Integer options: the accepted values, inclusive, in the option's unit (value_name),
  // written in `base`. Other options leave min > max.
  long long min = 1;
  long long max = 0;
  int base = 10;

  bool integer() const { return min <= max; }
};

// The options as given: for each option (by its first long name, without dashes), every
// value in order; flags and value-less optional options get one empty string per use.
struct ParsedOptions {
  std::map<std::string, std::vector<std::string>, std::less<>> values;
  // Each value option's default_text from the table.
  std::map<std::string, std::string_view, std::less<>> defaults;
  // Every option of the table by its first long name.
  std::map<std::string, const OptionSpec*, std::less<>> specs;

  bool Has(std::string_view name) const { return values.contains(name); }
  // The last value of `name`, or `fallback` if it was not given.
  std::string_view Last(std::string_view name, std::string_view fallback = {}) const;
  // The last value of `name`, or its table default if it was not given, so a default is
  // written once: in the table that --help and the man page show.
  std::string_view LastOrDefault(std::string_view name) const;
  const std::vector<std::string>& All(std::string_view name) const;
  // The integer value of option `name` (its table default when not given or given without
  // a value) within the table's range. REQUIRES: `name` is an integer option of the table,
  // which outlives this object.
  Result<long long> Integer(std::string_view name) const;
};

// Parses `text` as an integer from `min` to `max` in `base`; the error names --option.
template <typename Integer>
Result<Integer> ParseInteger(std::string_view option, std::string_view text, Integer min,
                             Integer max, int base = 10);

// Reads integer options (their range from the table) into their destinations, converted to
// the destination's type (a count, or a duration whose unit is the option's), and keeps
// the first error:
//   IntegerOptions numbers(options);
//   numbers.Set("idle-timeout", config.idle_timeout);  // std::chrono::seconds
//   numbers.Set<std::chrono::days>("max-age", timing.max_age);
//   if (!numbers.status().ok()) return numbers.status();
class IntegerOptions {
 public:
  explicit IntegerOptions(const ParsedOptions& options) : options_(options) {}

  // Sets `out` from option `name` (its table default when not given), unless an earlier
  // Set failed. `Unit` is the option's unit when it differs from Out's (days into seconds).
  template <typename Unit = void, typename Out>
  void Set(std::string_view name, Out& out) {
    if (!status_.ok()) return;
    Result<long long> value = options_.Integer(name);
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
