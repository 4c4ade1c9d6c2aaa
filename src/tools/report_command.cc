// `greylight report`.
#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <istream>
#include <ostream>

#include "tools/command.h"
#include "tools/mail_log.h"
#include "tools/output_format.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

constexpr OptionSpec kReportOptions[] = {
    {"--log", Arity::kValue, "FILE|-", "-", "the Postfix mail log to read; - is standard input",
     "greylight"},
    {"--format", Arity::kValue, "text|json", "text", "output format", "greylight"},
};

int RunReport(const ParsedOptions& o, Context& c) {
  auto format = ParseOutputFormat(o.LastOrDefault("format"), false);
  if (!format.ok()) return c.Fail(kExitConfig, format.status().message());
  std::string_view log_path = o.LastOrDefault("log");
  std::ifstream file;
  std::istream* in = &c.env.in;
  if (log_path != "-") {
    file.open(std::string(log_path));
    if (!file) {
      return c.Fail(kExitConfig,
                    fmt::format("--log: can't open {}: {}", log_path, std::strerror(errno)));
    }
    in = &file;
  }
  auto scheme = c.Scheme();
  if (!scheme.ok()) return c.Fail(kExitConfig, scheme.status().message());
  // The store first: no point reading a long log if it cannot be looked up.
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());

  MailLogScanner scanner(c.config.engine.greylist_text, *scheme, c.config.engine.spf_keys);
  std::string line;
  while (std::getline(*in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    scanner.AddLine(line);
  }
  if (in->bad()) return c.Fail(kExitConfig, fmt::format("--log: error reading {}", log_path));
  auto report = scanner.Finish(
      [&](std::string_view key) { return (*store)->Get(store::Table::kTriplets, key); },
      c.config.timing);
  if (!report.ok()) return c.StoreFailure(report.status());
  c.env.out << (*format == OutputFormat::kJson ? FormatReportJson(*report)
                                               : FormatReportText(*report));
  return kExitOk;
}

}  // namespace

constexpr Command kReportCommand = {
    "report",
    "[--log=FILE|-] [--greylist-text=TEXT] [--format=text|json] [options]",
    "greylisted triplets that never came back, from a Postfix mail log",
    "Reads a Postfix mail log and prints what postgreyreport prints: the greylisted\n"
    "triplets (Postfix \"reject: RCPT from NAME[IP]: 450 ...\" lines with the greylist text\n"
    "of --greylist-text, up to its first %s or %r) whose record is absent or still pending\n"
    "(with --lookup-by=domain|smart the keys use the logged client name, as greylightd's\n"
    "do; with --spf-keys a triplet also came back when its twin keyed spf:<sender domain,\n"
    "or the logged HELO name for <>> has passed), sorted by client address, one line\n"
    "\"ip name sender recipient\" per triplet. Then a\n"
    "summary: messages delayed (\"action=pass, reason=triplet found, delay=N\" decision\n"
    "lines of greylightd or postgrey in the same log) with the nearest-rank median and 90th\n"
    "percentile of N, greylisted triplets, and the share of greylisted clients none of\n"
    "whose triplets came back.\n",
    kReportOptions,
    true,
    RunReport};

}  // namespace greylight::tools
