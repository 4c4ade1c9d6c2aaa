#include "tools/output_format.h"

#include <fmt/format.h>

#include <ctime>

#include "util/log.h"

namespace greylight::tools {

Result<OutputFormat> ParseOutputFormat(std::string_view text, bool csv_allowed) {
  if (text == "text") return OutputFormat::kText;
  if (text == "json") return OutputFormat::kJson;
  if (text == "csv" && csv_allowed) return OutputFormat::kCsv;
  return Status::InvalidArgument(fmt::format("--format: '{}' is not one of {}", text,
                                             csv_allowed ? "text, csv, json" : "text, json"));
}

std::string FormatUtc(UnixTime time) {
  std::time_t seconds = static_cast<std::time_t>(ToUnixSeconds(time));
  std::tm parts{};
  if (gmtime_r(&seconds, &parts) == nullptr) return std::to_string(ToUnixSeconds(time));
  char text[64];
  size_t length = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return std::string(text, length);
}

std::string FormatTime(UnixTime time) {
  return fmt::format("{} ({})", FormatUtc(time), ToUnixSeconds(time));
}

std::string FormatDuration(Seconds duration) {
  long long total = duration.count();
  if (total < 60 && total > -60) return fmt::format("{} s", total);
  long long magnitude = total < 0 ? -total : total;
  long long days = magnitude / 86400;
  long long hours = magnitude % 86400 / 3600;
  long long minutes = magnitude % 3600 / 60;
  long long seconds = magnitude % 60;
  std::string parts;
  auto add = [&parts](long long value, char unit) {
    if (value == 0) return;
    if (!parts.empty()) parts.push_back(' ');
    parts += fmt::format("{}{}", value, unit);
  };
  add(days, 'd');
  add(hours, 'h');
  add(minutes, 'm');
  add(seconds, 's');
  return fmt::format("{} s ({}{})", total, total < 0 ? "-" : "", parts);
}

std::string CsvField(std::string_view value) {
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(value);
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

std::string Printable(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f) {
      out += fmt::format("%{:02X}", byte);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string JsonString(std::string_view value) {
  std::string out;
  log::AppendJsonString(out, value);
  return out;
}

}  // namespace greylight::tools
