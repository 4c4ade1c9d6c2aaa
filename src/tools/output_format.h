#pragma once

// Small formatting helpers shared by the greylight commands: times, CSV fields, JSON
// strings and the --format option.

#include <string>
#include <string_view>

#include "util/clock.h"
#include "util/status.h"

namespace greylight::tools {

// The output formats of `list`, `stats` and `report`.
enum class OutputFormat { kText, kCsv, kJson };

// Parses a --format value: "text", "json" and, if `csv_allowed`, "csv". Errors name the
// option and the accepted values.
Result<OutputFormat> ParseOutputFormat(std::string_view text, bool csv_allowed);

// `time` in UTC as ISO 8601 with a Z suffix: "2027-01-15T08:00:00Z".
std::string FormatUtc(UnixTime time);

// `time` for people: "2027-01-15T08:00:00Z (1800000000)".
std::string FormatTime(UnixTime time);

// A duration for people: "240 s", or "90000 s (1d 1h)" when it is a minute or longer.
std::string FormatDuration(Seconds duration);

// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF.
std::string CsvField(std::string_view value);

// `value` safe to print on a terminal: bytes outside printable ASCII become %XX.
std::string Printable(std::string_view value);

// A JSON string literal, quotes included (see log::AppendJsonString for the escaping).
std::string JsonString(std::string_view value);

}  // namespace greylight::tools
