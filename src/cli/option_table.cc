#include "cli/option_table.h"

#include <fmt/format.h>

#include <charconv>
#include <optional>

namespace greylight::cli {

std::string_view ParsedOptions::Last(std::string_view name, std::string_view fallback) const {
  auto it = values.find(name);
  return it == values.end() || it->second.empty() ? fallback : std::string_view(it->second.back());
}

std::string_view ParsedOptions::LastOrDefault(std::string_view name) const {
  auto it = defaults.find(name);
  return Last(name, it == defaults.end() ? std::string_view() : it->second);
}

template <typename Integer>
Result<Integer> ParseInteger(std::string_view option, std::string_view text, Integer min,
                             Integer max, int base) {
  Integer value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    return Status::InvalidArgument(
        fmt::format("--{}: '{}' is not a number from {} to {}", option, text, min, max));
  }
  return value;
}
template Result<int> ParseInteger<int>(std::string_view, std::string_view, int, int, int);
template Result<unsigned> ParseInteger<unsigned>(std::string_view, std::string_view, unsigned,
                                                 unsigned, int);
template Result<long long> ParseInteger<long long>(std::string_view, std::string_view, long long,
                                                   long long, int);
template Result<size_t> ParseInteger<size_t>(std::string_view, std::string_view, size_t, size_t,
                                             int);

Result<long long> ParsedOptions::Integer(std::string_view name) const {
  const OptionSpec& spec = *specs.at(std::string(name));
  // Not given, or given without a value (an optional value, e.g. postgrey's bare
  // --auto-whitelist-clients): the table's default.
  std::string_view text = Last(name, spec.default_text);
  if (text.empty() && spec.arity == OptionSpec::Arity::kOptionalValue) text = spec.default_text;
  return ParseInteger<long long>(name, text, spec.min, spec.max, spec.base);
}

const std::vector<std::string>& ParsedOptions::All(std::string_view name) const {
  static const std::vector<std::string> kNone;
  auto it = values.find(name);
  return it == values.end() ? kNone : it->second;
}

std::vector<std::string> Spellings(const OptionSpec& spec) {
  std::vector<std::string> spellings;
  std::string_view names = spec.names;
  while (!names.empty()) {
    size_t comma = names.find(',');
    spellings.emplace_back(names.substr(0, comma));
    names = comma == std::string_view::npos ? std::string_view() : names.substr(comma + 1);
  }
  return spellings;
}

std::string PrimaryName(const OptionSpec& spec) {
  for (const std::string& spelling : Spellings(spec)) {
    if (spelling.starts_with("--")) return spelling.substr(2);
  }
  return Spellings(spec).front().substr(1);
}

Result<ParsedOptions> ParseOptions(std::span<const OptionSpec> table,
                                   const std::vector<std::string>& args) {
  std::map<std::string, const OptionSpec*, std::less<>> by_spelling;
  for (const OptionSpec& spec : table) {
    for (const std::string& spelling : Spellings(spec)) by_spelling[spelling] = &spec;
  }
  ParsedOptions parsed;
  for (const OptionSpec& spec : table) {
    parsed.specs[PrimaryName(spec)] = &spec;
    if (spec.arity != OptionSpec::Arity::kFlag) {
      parsed.defaults[PrimaryName(spec)] = spec.default_text;
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      return Status::Usage(fmt::format("unexpected argument: {}", arg));
    }
    std::string_view spelling = arg;
    std::optional<std::string> inline_value;
    if (arg.starts_with("--")) {
      size_t equals = arg.find('=');
      if (equals != std::string_view::npos) {
        spelling = arg.substr(0, equals);
        inline_value = std::string(arg.substr(equals + 1));
      }
    }
    auto it = by_spelling.find(spelling);
    if (it == by_spelling.end()) {
      return Status::Usage(
          fmt::format("Unknown option: {}", spelling.substr(spelling.find_first_not_of('-'))));
    }
    const OptionSpec& spec = *it->second;
    std::vector<std::string>& values = parsed.values[PrimaryName(spec)];
    switch (spec.arity) {
      case OptionSpec::Arity::kFlag:
        if (inline_value) {
          return Status::Usage(fmt::format("Option {} does not take a value", spelling));
        }
        values.emplace_back();
        break;
      case OptionSpec::Arity::kOptionalValue:
        if (inline_value) {
          values.push_back(*inline_value);
        } else if (i + 1 < args.size() && !args[i + 1].starts_with("-")) {
          values.push_back(args[++i]);
        } else {
          values.emplace_back();
        }
        break;
      case OptionSpec::Arity::kValue:
      case OptionSpec::Arity::kRepeated:
        if (inline_value) {
          values.push_back(*inline_value);
        } else if (i + 1 < args.size()) {
          values.push_back(args[++i]);
        } else {
          return Status::Usage(fmt::format("Option {} requires an argument", spelling));
        }
        break;
    }
  }
  return parsed;
}

std::string FormatOptionHelp(std::span<const OptionSpec> table) {
  std::string help;
  for (const OptionSpec& spec : table) {
    std::string left;
    for (const std::string& spelling : Spellings(spec)) {
      if (!left.empty()) left += ", ";
      left += spelling;
    }
    if (spec.arity == OptionSpec::Arity::kOptionalValue) {
      left += fmt::format("[={}]", spec.value_name);
    } else if (spec.arity != OptionSpec::Arity::kFlag) {
      left += fmt::format("={}", spec.value_name);
    }
    help += fmt::format("  {}\n      {}", left, spec.help);
    std::string range;
    if (spec.integer()) {
      range = spec.base == 8 ? fmt::format("{:o} to {:o}", spec.min, spec.max)
                             : fmt::format("{} to {}", spec.min, spec.max);
    }
    if (!spec.default_text.empty() && !range.empty()) {
      help += fmt::format(" (default: {}; {})", spec.default_text, range);
    } else if (!spec.default_text.empty()) {
      help += fmt::format(" (default: {})", spec.default_text);
    } else if (!range.empty()) {
      help += fmt::format(" ({})", range);
    }
    help += "\n";
  }
  return help;
}

}  // namespace greylight::cli
