#include "tools/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <span>

#include "cli/option_table.h"
#include "cli/policy_config.h"
#include "engine/request_keys.h"
#include "policy/greylist_state.h"
#include "policy/ip_address.h"
#include "policy/records.h"
#include "policy/triplet_key.h"
#include "store/store.h"
#include "tools/explain.h"
#include "tools/mail_log.h"
#include "tools/output_format.h"
#include "tools/policy_client.h"
#include "tools/postgrey_db.h"
#include "tools/record_filter.h"
#include "tools/tool_keys.h"
#include "tools/tool_store.h"
#include "version.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

constexpr std::string_view kPostgreyImportTarget = "/var/lib/greylight";
// The client_name Postfix sends for a client whose name it could not verify.
constexpr std::string_view kUnverifiedClientName = "unknown";
constexpr long long kMaxUnixTime = 253402300799;  // 9999-12-31T23:59:59Z

// --- Option tables ------------------------------------------------------------------------

constexpr OptionSpec kHelpOption = {
    "-h,--help", Arity::kFlag, "", "", "show the options of this command and exit", "greylight"};
constexpr OptionSpec kAtOption = {
    "--at",
    Arity::kValue,
    "UNIXTIME",
    "the current time",
    "judge the records at this Unix time instead of now (e.g. to match requests replayed "
    "with policy_test_time)",
    "greylight"};

constexpr OptionSpec kClientNameOption = {
    "--client-name",
    Arity::kValue,
    "NAME",
    "unknown",
    "the client's verified host name, as Postfix sends it; keys depend on it with "
    "--lookup-by=domain|smart",
    "greylight"};

constexpr OptionSpec kExplainOptions[] = {
    {"--client-address", Arity::kValue, "ADDRESS", "", "the client's IP address (required)",
     "greylight"},
    kClientNameOption,
    {"--sender", Arity::kValue, "ADDRESS", "",
     "the envelope sender (required; empty or <> for the null sender)", "greylight"},
    {"--recipient", Arity::kValue, "ADDRESS", "", "the envelope recipient (required)", "greylight"},
    kAtOption,
};

constexpr OptionSpec kQueryOptions[] = {
    kHelpOption,
    {"--server", Arity::kValue, "inet:HOST:PORT|unix:PATH", "inet:127.0.0.1:10023",
     "the policy server to ask, as in Postfix's check_policy_service", "greylight"},
    {"--client-address", Arity::kValue, "ADDRESS", "", "the client's IP address (required)",
     "greylight"},
    kClientNameOption,
    {"--helo", Arity::kValue, "NAME", "", "the HELO/EHLO name (helo_name; not sent if not given)",
     "greylight"},
    {"--sender", Arity::kValue, "ADDRESS", "",
     "the envelope sender (required; empty or <> for the null sender)", "greylight"},
    {"--recipient", Arity::kValue, "ADDRESS", "", "the envelope recipient (required)", "greylight"},
    {"--attribute", Arity::kRepeated, "NAME=VALUE", "",
     "one more request attribute, or another value for one of the above (repeatable)", "greylight"},
    {"--timeout", Arity::kValue, "SECONDS", "10",
     "give up when connecting, sending or waiting for the answer takes longer", "greylight"},
};

constexpr OptionSpec kStatsOptions[] = {
    {"--format", Arity::kValue, "text|json", "text", "output format", "greylight"},
    kAtOption,
};

constexpr OptionSpec kListOptions[] = {
    {"--client", Arity::kValue, "ADDRESS|NETWORK", "",
     "only triplets whose client network overlaps ADDRESS or NETWORK (e.g. 192.0.2.10, "
     "192.0.2.0/24, 2001:db8::/32); with --clients or --traps, only those clients",
     "greylight"},
    {"--sender", Arity::kValue, "ADDRESS", "",
     "only triplets of this sender, compared after the key's normalisation and lowercasing "
     "(<> is the null sender)",
     "greylight"},
    {"--recipient", Arity::kValue, "ADDRESS", "",
     "only triplets of this recipient (compared lowercased)", "greylight"},
    {"--state", Arity::kValue, "pending|passed|all", "all",
     "only triplets still greylisted (pending) or already delivered (passed)", "greylight"},
    {"--format", Arity::kValue, "text|csv|json", "text", "output format", "greylight"},
    {"--clients", Arity::kFlag, "", "",
     "list the client auto-whitelist records instead of the triplets", "greylight"},
    {"--traps", Arity::kFlag, "", "",
     "list the greytrap list instead of the triplets: each client's address, until when it "
     "is trapped and its last trap hit",
     "greylight"},
    {"--at", Arity::kValue, "UNIXTIME", "the current time",
     "with --traps: judge whether a client is still trapped at this Unix time", "greylight"},
};

constexpr OptionSpec kDeleteOptions[] = {
    {"--key", Arity::kValue, "KEY", "", "the stored key of the record to delete", "greylight"},
    {"--clients", Arity::kFlag, "", "", "--key names a client auto-whitelist record, not a triplet",
     "greylight"},
    {"--traps", Arity::kFlag, "", "", "--key names a greytrap-list record, not a triplet",
     "greylight"},
    {"--client-address", Arity::kValue, "ADDRESS", "",
     "with --sender and --recipient: the triplet of this request", "greylight"},
    {"--sender", Arity::kValue, "ADDRESS", "", "see --client-address (<> is the null sender)",
     "greylight"},
    {"--recipient", Arity::kValue, "ADDRESS", "", "see --client-address", "greylight"},
    {"--client", Arity::kValue, "ADDRESS", "",
     "delete the client auto-whitelist record of this address (with --client-name in the "
     "domain modes, where the record is per domain)",
     "greylight"},
    kClientNameOption,
    {"--trap", Arity::kValue, "ADDRESS", "",
     "take the client at this address off the greytrap list", "greylight"},
};

constexpr OptionSpec kPassOptions[] = {
    {"--key", Arity::kValue, "KEY", "", "the stored key of the triplet", "greylight"},
    {"--client-address", Arity::kValue, "ADDRESS", "",
     "with --sender and --recipient: the triplet of this request", "greylight"},
    kClientNameOption,
    {"--sender", Arity::kValue, "ADDRESS", "", "see --client-address (<> is the null sender)",
     "greylight"},
    {"--recipient", Arity::kValue, "ADDRESS", "", "see --client-address", "greylight"},
    kAtOption,
};

constexpr OptionSpec kReportOptions[] = {
    {"--log", Arity::kValue, "FILE|-", "-", "the Postfix mail log to read; - is standard input",
     "greylight"},
    {"--format", Arity::kValue, "text|json", "text", "output format", "greylight"},
};

constexpr OptionSpec kMigrateOptions[] = {
    {"--from", Arity::kValue, "URI", "", "the store to copy from (required; see --store)",
     "greylight"},
    {"--to", Arity::kValue, "URI", "", "the store to copy into, created if needed (required)",
     "greylight"},
};

constexpr OptionSpec kImportOptions[] = {
    {"--dbdir", Arity::kValue, "DIR", "",
     "postgrey's database directory, holding postgrey.db and postgrey_clients.db (required; "
     "postgrey must be stopped)",
     "postgrey"},
    {"--store", Arity::kValue, "URI", "lmdb:/var/lib/greylight",
     "the greylight store to import into, created if needed: lmdb:/path/to/dbdir (lmdb: alone "
     "is /var/lib/greylight)",
     "greylight"},
    kHelpOption,
};

// --- Commands -----------------------------------------------------------------------------

struct Context;
using CommandFunction = int (*)(const ParsedOptions& options, Context& context);

struct Command {
  std::string_view name;
  std::string_view synopsis;
  std::string_view summary;
  std::string_view description;
  std::span<const OptionSpec> options;
  // Takes --help, --store and greylightd's policy options besides its own.
  bool policy_options;
  CommandFunction run;
};

struct Context {
  Context(const Command& command, ToolEnvironment& env) : command(command), env(env) {}

  const Command& command;
  ToolEnvironment& env;
  cli::PolicyConfig config;
  std::string store_uri;

  // Prints "greylight COMMAND: message" on stderr and returns `code`.
  int Fail(int code, std::string_view message) {
    env.err << "greylight " << command.name << ": " << message << "\n";
    return code;
  }
  void Warn(std::string_view message) {
    env.err << "greylight " << command.name << ": warning: " << message << "\n";
  }
  // The exit status for a failed store operation: bad URIs are usage errors.
  int StoreFailure(const Status& status) {
    return Fail(status.code() == Status::Code::kInvalidArgument ? kExitUsage : kExitStore,
                status.message());
  }

  // The public suffix list --lookup-by=domain|smart needs (nullptr in the address modes),
  // loaded on first use. A load failure is a configuration error (InvalidArgument).
  Result<const reputation::Psl*> PublicSuffixList() {
    if (!psl_loaded) {
      auto loaded = LoadPslFor(config);
      if (!loaded.ok()) return loaded.status();
      psl = std::move(loaded.value());
      psl_loaded = true;
    }
    return psl.get();
  }
  // The key scheme greylightd uses with these options.
  Result<engine::KeyScheme> Scheme() {
    auto loaded = PublicSuffixList();
    if (!loaded.ok()) return loaded.status();
    return KeySchemeFor(config, *loaded);
  }
  // The keys greylightd builds for a request (engine::BuildRequestKeys).
  Result<engine::RequestKeys> Keys(const policy::IpAddress& client, std::string_view client_name,
                                   std::string_view sender, std::string_view recipient) {
    auto scheme = Scheme();
    if (!scheme.ok()) return scheme.status();
    return engine::BuildRequestKeys(client, client_name, sender, recipient, *scheme);
  }

  std::unique_ptr<const reputation::Psl> psl;
  bool psl_loaded = false;
};

int RunExplain(const ParsedOptions& o, Context& c);
int RunQuery(const ParsedOptions& o, Context& c);
int RunStats(const ParsedOptions& o, Context& c);
int RunList(const ParsedOptions& o, Context& c);
int RunDelete(const ParsedOptions& o, Context& c);
int RunPass(const ParsedOptions& o, Context& c);
int RunReport(const ParsedOptions& o, Context& c);
int RunMigrate(const ParsedOptions& o, Context& c);
int RunImportPostgrey(const ParsedOptions& o, Context& c);

constexpr Command kCommands[] = {
    {"explain", "--client-address=A --sender=S --recipient=R [--client-name=N] [options]",
     "what greylightd would answer for a request now, and why (read-only)",
     "Prints the whitelist entry that matches (file:line), or, in greylightd's order, the\n"
     "client group (--lookup-by=domain|smart), the greytrap entry the recipient matches and\n"
     "the client's greytrap-list record (with --greytrap-recipients), the client's\n"
     "auto-whitelist record, and the triplet's key and record (first and last seen, pending\n"
     "or passed, the seconds left, when it expires); then the decision and the exact action\n"
     "greylightd would send, computed as greylightd computes it but without writing\n"
     "anything. The request is taken to come from Postfix 2.3 or later (which sends\n"
     "etrn_domain).\n",
     kExplainOptions, true, RunExplain},
    {"query",
     "--client-address=A --sender=S --recipient=R [--client-name=N] [--server=inet:H:P|unix:P]",
     "send one policy request to a running greylightd and print its answer",
     "Speaks the policy delegation protocol as Postfix's smtpd does: sends one\n"
     "smtpd_access_policy request for the RCPT stage (protocol_state=RCPT,\n"
     "protocol_name=ESMTP, an instance id) with the given client, sender and recipient to\n"
     "--server, and prints the reply line (action=...). Unlike explain, this is a real\n"
     "request: greylightd decides, records and logs it as Postfix's would be.\n",
     kQueryOptions, false, RunQuery},
    {"stats", "[--format=text|json] [options]",
     "counts of triplets, auto-whitelisted clients and trapped clients",
     "Counts pending and passed triplets (and those expired, awaiting removal), clients at\n"
     "or above the auto-whitelist threshold and below it, the triplets by last seen: less\n"
     "than 1 hour, 1 day, 7 days, 35 days ago, and older, and the greytrap list: clients\n"
     "trapped now and traps that have ended, awaiting removal.\n",
     kStatsOptions, true, RunStats},
    {"list",
     "[--client=NET] [--sender=S] [--recipient=R] [--state=S] [--format=F] "
     "[--clients | --traps [--at=T]]",
     "list triplets, or the auto-whitelist records or the greytrap list",
     "Lists triplets with their key split into client network, sender and recipient, their\n"
     "first and last sighting and their state. --clients lists the auto-whitelist records\n"
     "(count, last seen, whitelisted or counting), --traps the greytrap list (until when\n"
     "the client is trapped, its last trap hit, trapped or expired). With --privacy keys are\n"
     "SHA-1 digests: they are listed as they are, and --client, --sender and --recipient\n"
     "cannot be used.\n",
     kListOptions, true, RunList},
    {"delete",
     "(--key=KEY [--clients|--traps] | --client-address=A [--client-name=N] --sender=S "
     "--recipient=R | --client=A [--client-name=N] | --trap=A)",
     "delete one triplet, auto-whitelist record or greytrap-list record",
     "Deletes the triplet named by its key or by a request's addresses, the auto-whitelist\n"
     "record of a client (its domain's with --lookup-by=domain|smart and a verified\n"
     "--client-name), or takes a client off the greytrap list. Exits 1 if there is no such\n"
     "record.\n",
     kDeleteOptions, true, RunDelete},
    {"pass",
     "(--key=KEY | --client-address=A [--client-name=N] --sender=S --recipient=R) [options]",
     "let one pending triplet through now",
     "Moves the first sighting of a pending triplet back by --delay (first = last = now -\n"
     "delay), so the next request for it is its first accepted delivery: it passes with the\n"
     "X-Greylist header and counts toward the client auto-whitelist (unless the client is\n"
     "on the greytrap list, which greylists it whatever its triplets say). Exits 1 if the\n"
     "triplet is absent or has already passed.\n",
     kPassOptions, true, RunPass},
    {"report", "[--log=FILE|-] [--greylist-text=TEXT] [--format=text|json] [options]",
     "greylisted triplets that never came back, from a Postfix mail log",
     "Reads a Postfix mail log and prints what postgreyreport prints: the greylisted\n"
     "triplets (Postfix \"reject: RCPT from NAME[IP]: 450 ...\" lines with the greylist text\n"
     "of --greylist-text, up to its first %s or %r) whose record is absent or still pending\n"
     "(with --lookup-by=domain|smart the keys use the logged client name, as greylightd's\n"
     "do), sorted by client address, one line \"ip name sender recipient\" per triplet. Then a\n"
     "summary: messages delayed (\"action=pass, reason=triplet found, delay=N\" decision\n"
     "lines of greylightd or postgrey in the same log) with the nearest-rank median and 90th\n"
     "percentile of N, greylisted triplets, and the share of greylisted clients none of\n"
     "whose triplets came back.\n",
     kReportOptions, true, RunReport},
    {"migrate", "--from=URI --to=URI [options]", "copy every record from one store to another",
     "Copies every triplet, client and greytrap-list record, values unchanged, from the\n"
     "store --from into the store --to (created if needed; existing records with the same\n"
     "keys are overwritten) and reports the counts. lmdb: in either means LMDB at --dbdir.\n",
     kMigrateOptions, true, RunMigrate},
    {"import-postgrey", "--dbdir=POSTGREY_DIR [--store=URI]", "import postgrey's Berkeley DB files",
     "Reads postgrey's postgrey.db (triplets) and postgrey_clients.db (auto-whitelist) from\n"
     "--dbdir and writes every record into the greylight store --store, overwriting records\n"
     "with the same keys, then reports the counts. postgrey must be stopped; its files are\n"
     "copied and recovered in a temporary directory, never changed. A record whose value is\n"
     "not in postgrey's format is skipped with a warning naming its key.\n",
     kImportOptions, false, RunImportPostgrey},
};

const Command* FindCommand(std::string_view name) {
  for (const Command& command : kCommands) {
    if (command.name == name) return &command;
  }
  return nullptr;
}

std::vector<OptionSpec> OptionTableFor(const Command& command) {
  std::vector<OptionSpec> table(command.options.begin(), command.options.end());
  if (command.policy_options) {
    table.push_back(kHelpOption);
    for (const OptionSpec& spec : cli::PolicyOptionTable()) table.push_back(spec);
  }
  return table;
}

std::string UsageOf(const Command& command) {
  std::string summary(command.summary);
  if (!summary.empty() && summary[0] >= 'a' && summary[0] <= 'z') summary[0] -= 'a' - 'A';
  std::string usage = fmt::format("Usage: greylight {} {}\n\n{}.\n\n{}\nOptions:\n", command.name,
                                  command.synopsis, summary, command.description);
  usage += cli::FormatOptionHelp(command.options);
  if (command.policy_options) {
    std::vector<OptionSpec> shared = {kHelpOption};
    usage += cli::FormatOptionHelp(shared);
    usage += "\nStore and policy options, as given to greylightd:\n";
    usage += cli::FormatOptionHelp(cli::PolicyOptionTable());
  }
  usage +=
      "\nExit status: 0 success, 1 record absent or already passed, 2 bad arguments,\n"
      "3 store (query: policy server) unreachable or unreadable.\n";
  return usage;
}

// --- Shared helpers -----------------------------------------------------------------------

Result<UnixTime> TimeOption(const ParsedOptions& o, Context& c) {
  if (!o.Has("at")) return c.env.clock.Now();
  auto seconds = cli::ParseInteger<long long>("at", o.Last("at"), 0, kMaxUnixTime);
  if (!seconds.ok()) return seconds.status();
  return FromUnixSeconds(*seconds);
}

std::string SenderOption(const ParsedOptions& o) {
  std::string_view sender = o.Last("sender");
  return sender == "<>" ? std::string() : std::string(sender);
}

// Parses a request address option; errors name it.
Result<policy::IpAddress> AddressOption(const ParsedOptions& o, std::string_view name) {
  std::string_view text = o.Last(name);
  std::optional<policy::IpAddress> address = policy::IpAddress::Parse(text);
  if (!address) {
    return Status::InvalidArgument(fmt::format("--{}: '{}' is not an IP address", name, text));
  }
  return *address;
}

// What a record of `table` is called in messages.
std::string_view RecordNoun(store::Table table) {
  switch (table) {
    case store::Table::kTriplets:
      return "triplet";
    case store::Table::kClients:
      return "client record";
    case store::Table::kTraps:
      return "trap record";
  }
  return "record";
}

std::string_view ClientNameOption(const ParsedOptions& o) {
  return o.Last("client-name", kUnverifiedClientName);
}

// The triplet key named by --key, or built from --client-address, --client-name, --sender
// and --recipient as greylightd builds it.
Result<std::string> TripletKeyOption(const ParsedOptions& o, Context& c) {
  const bool by_key = o.Has("key");
  const bool by_request =
      o.Has("client-address") || o.Has("client-name") || o.Has("sender") || o.Has("recipient");
  if (by_key == by_request) {
    return Status::InvalidArgument(
        "give either --key or all of --client-address, --sender and --recipient");
  }
  if (by_key) {
    if (o.Last("key").empty()) return Status::InvalidArgument("--key: empty key");
    return std::string(o.Last("key"));
  }
  if (!o.Has("client-address") || !o.Has("sender") || !o.Has("recipient")) {
    return Status::InvalidArgument("--client-address, --sender and --recipient go together");
  }
  auto address = AddressOption(o, "client-address");
  if (!address.ok()) return address.status();
  auto keys = c.Keys(*address, ClientNameOption(o), SenderOption(o), o.Last("recipient"));
  if (!keys.ok()) return keys.status();
  return std::move(keys->triplet);
}

// --- explain ------------------------------------------------------------------------------

int RunExplain(const ParsedOptions& o, Context& c) {
  for (std::string_view required : {"client-address", "sender", "recipient"}) {
    if (!o.Has(required)) {
      return c.Fail(kExitUsage, "--client-address, --sender and --recipient are required");
    }
  }
  auto now = TimeOption(o, c);
  if (!now.ok()) return c.Fail(kExitUsage, now.status().message());
  auto whitelists = cli::LoadWhitelists(c.config);
  if (!whitelists.ok()) return c.Fail(kExitUsage, whitelists.status().message());
  for (const std::string& warning : (*whitelists)->warnings()) c.Warn(warning);
  auto greytraps = cli::LoadGreytraps(c.config);
  if (!greytraps.ok()) return c.Fail(kExitUsage, greytraps.status().message());
  auto psl = c.PublicSuffixList();
  if (!psl.ok()) return c.Fail(kExitUsage, psl.status().message());
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());

  ExplainRequest request;
  request.client_address = std::string(o.Last("client-address"));
  request.client_name = std::string(ClientNameOption(o));
  request.sender = SenderOption(o);
  request.recipient = std::string(o.Last("recipient"));
  ExplainInputs inputs{whitelists->get(), greytraps->get(), *psl};
  auto explanation = Explain(request, *now, c.env.clock.Now(), c.config, inputs, **store);
  if (!explanation.ok()) return c.StoreFailure(explanation.status());
  c.env.out << explanation->text;
  return kExitOk;
}

// --- query --------------------------------------------------------------------------------

int RunQuery(const ParsedOptions& o, Context& c) {
  for (std::string_view required : {"client-address", "sender", "recipient"}) {
    if (!o.Has(required)) {
      return c.Fail(kExitUsage, "--client-address, --sender and --recipient are required");
    }
  }
  auto server = PolicyServerAddress::Parse(o.LastOrDefault("server"));
  if (!server.ok()) return c.Fail(kExitUsage, "--server: " + server.status().message());
  auto timeout_seconds =
      cli::ParseInteger<long long>("timeout", o.LastOrDefault("timeout"), 1, 3600);
  if (!timeout_seconds.ok()) return c.Fail(kExitUsage, timeout_seconds.status().message());
  // Postfix's attribute order; --attribute adds to them or replaces one.
  std::vector<std::pair<std::string, std::string>> attributes = {
      {"protocol_state", "RCPT"},
      {"protocol_name", "ESMTP"},
      {"client_address", std::string(o.Last("client-address"))},
      {"client_name", std::string(ClientNameOption(o))},
      {"reverse_client_name", std::string(ClientNameOption(o))},
      {"helo_name", std::string(o.Last("helo"))},
      {"sender", SenderOption(o)},
      {"recipient", std::string(o.Last("recipient"))},
      {"recipient_count", "0"},
      {"queue_id", ""},
      {"instance", fmt::format("greylight-query.{}", c.env.clock.Now().time_since_epoch().count())},
      {"etrn_domain", ""},
  };
  if (!o.Has("helo"))
    std::erase_if(attributes, [](const auto& a) { return a.first == "helo_name"; });
  for (const std::string& extra : o.All("attribute")) {
    size_t equals = extra.find('=');
    if (equals == std::string::npos || equals == 0) {
      return c.Fail(kExitUsage, fmt::format("--attribute '{}': expected NAME=VALUE", extra));
    }
    std::string name = extra.substr(0, equals);
    auto same = std::find_if(attributes.begin(), attributes.end(),
                             [&](const auto& a) { return a.first == name; });
    if (same != attributes.end()) {
      same->second = extra.substr(equals + 1);
    } else {
      attributes.emplace_back(std::move(name), extra.substr(equals + 1));
    }
  }
  auto request = FormatPolicyRequest(attributes);
  if (!request.ok()) return c.Fail(kExitUsage, request.status().message());
  auto reply = AskPolicyServer(*server, *request, std::chrono::seconds(*timeout_seconds));
  if (!reply.ok()) return c.Fail(kExitStore, reply.status().message());
  c.env.out << *reply << "\n";
  return kExitOk;
}

// --- stats --------------------------------------------------------------------------------

struct AgeBuckets {
  static constexpr std::array<std::pair<std::string_view, long long>, 4> kLimits = {
      {{"<1h", 3600}, {"<1d", 86400}, {"<7d", 7 * 86400}, {"<35d", 35 * 86400}}};
  std::array<uint64_t, kLimits.size() + 1> counts{};

  void Add(Seconds age) {
    size_t i = 0;
    while (i < kLimits.size() && age.count() >= kLimits[i].second) ++i;
    ++counts[i];
  }
};

int RunStats(const ParsedOptions& o, Context& c) {
  auto format = ParseOutputFormat(o.LastOrDefault("format"), false);
  if (!format.ok()) return c.Fail(kExitUsage, format.status().message());
  auto now_or = TimeOption(o, c);
  if (!now_or.ok()) return c.Fail(kExitUsage, now_or.status().message());
  const UnixTime now = *now_or;
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());

  const policy::GreylistTiming& timing = c.config.timing;
  uint64_t pending = 0, passed = 0, triplets_expired = 0, triplets_malformed = 0;
  AgeBuckets ages;
  Status walked =
      (*store)->ForEach(store::Table::kTriplets, [&](std::string_view, std::string_view value) {
        std::optional<policy::TripletRecord> record = policy::DecodeTriplet(value);
        if (!record) {
          ++triplets_malformed;
          return true;
        }
        ++(StateOf(*record, timing) == TripletState::kPassed ? passed : pending);
        if (policy::Expired(*record, now, timing)) ++triplets_expired;
        ages.Add(now - record->last);
        return true;
      });
  if (!walked.ok()) return c.StoreFailure(walked);
  uint64_t whitelisted = 0, below = 0, clients_expired = 0, clients_malformed = 0;
  walked = (*store)->ForEach(store::Table::kClients, [&](std::string_view, std::string_view value) {
    std::optional<policy::ClientRecord> record = policy::DecodeClient(value);
    if (!record) {
      ++clients_malformed;
      return true;
    }
    const bool listed = policy::AutoWhitelisted(*record, timing);
    ++(listed ? whitelisted : below);
    if (policy::Expired(*record, now, timing)) ++clients_expired;
    return true;
  });
  if (!walked.ok()) return c.StoreFailure(walked);
  uint64_t trapping = 0, traps_expired = 0, traps_malformed = 0;
  walked = (*store)->ForEach(store::Table::kTraps, [&](std::string_view, std::string_view value) {
    std::optional<policy::TrapRecord> record = policy::DecodeTrap(value);
    if (!record) {
      ++traps_malformed;
      return true;
    }
    ++(policy::Expired(*record, now) ? traps_expired : trapping);
    return true;
  });
  if (!walked.ok()) return c.StoreFailure(walked);

  const uint64_t triplets = pending + passed + triplets_malformed;
  const uint64_t clients = whitelisted + below + clients_malformed;
  const uint64_t traps = trapping + traps_expired + traps_malformed;
  std::string out;
  if (*format == OutputFormat::kJson) {
    out = fmt::format(
        "{{\"at\":{},\"triplets\":{{\"total\":{},\"pending\":{},\"passed\":{},\"expired\":{},"
        "\"malformed\":{},\"age_by_last_seen\":{{\"lt_1h\":{},\"lt_1d\":{},\"lt_7d\":{},"
        "\"lt_35d\":{},\"older\":{}}}}},\"clients\":{{\"total\":{},\"auto_whitelisted\":{},"
        "\"below_threshold\":{},\"expired\":{},\"malformed\":{},\"threshold\":{}}},"
        "\"traps\":{{\"total\":{},\"trapping\":{},\"expired\":{},\"malformed\":{}}}}}\n",
        ToUnixSeconds(now), triplets, pending, passed, triplets_expired, triplets_malformed,
        ages.counts[0], ages.counts[1], ages.counts[2], ages.counts[3], ages.counts[4], clients,
        whitelisted, below, clients_expired, clients_malformed, timing.awl_threshold, traps,
        trapping, traps_expired, traps_malformed);
  } else {
    out += fmt::format("at: {}\n", FormatTime(now));
    out += fmt::format("triplets: {}\n", triplets);
    out += fmt::format("  pending: {}\n", pending);
    out += fmt::format("  passed: {}\n", passed);
    out += fmt::format("  expired, awaiting removal: {}\n", triplets_expired);
    out += fmt::format("  malformed: {}\n", triplets_malformed);
    out += "  by last seen:";
    for (size_t i = 0; i < AgeBuckets::kLimits.size(); ++i) {
      out += fmt::format(" {} {},", AgeBuckets::kLimits[i].first, ages.counts[i]);
    }
    out += fmt::format(" older {}\n", ages.counts[AgeBuckets::kLimits.size()]);
    out += fmt::format("clients: {}\n", clients);
    out += fmt::format("  auto-whitelisted (count >= {}): {}\n", timing.awl_threshold, whitelisted);
    out += fmt::format("  below threshold: {}\n", below);
    out += fmt::format("  expired, awaiting removal: {}\n", clients_expired);
    out += fmt::format("  malformed: {}\n", clients_malformed);
    out += fmt::format("traps: {}\n", traps);
    out += fmt::format("  trapping now: {}\n", trapping);
    out += fmt::format("  expired, awaiting removal: {}\n", traps_expired);
    out += fmt::format("  malformed: {}\n", traps_malformed);
  }
  c.env.out << out;
  return kExitOk;
}

// --- list ---------------------------------------------------------------------------------

// Writes one listing row per record in the chosen format.
class ListWriter {
 public:
  ListWriter(std::ostream& out, OutputFormat format) : out_(out), format_(format) {}

  void TripletHeader() {
    if (format_ == OutputFormat::kText) {
      out_ << "STATE   FIRST SEEN           LAST SEEN            CLIENT SENDER RECIPIENT\n";
    } else if (format_ == OutputFormat::kCsv) {
      out_ << "key,client,sender,recipient,state,first,last\n";
    } else {
      out_ << "[";
    }
  }

  void Triplet(std::string_view key, const TripletFields* fields, TripletState state,
               const policy::TripletRecord& record) {
    switch (format_) {
      case OutputFormat::kText:
        out_ << fmt::format("{:<7} {} {} ", StateName(state), FormatUtc(record.first),
                            FormatUtc(record.last));
        if (fields != nullptr) {
          out_ << fmt::format("{} {} {}\n", fields->client,
                              fields->sender.empty() ? "<>" : fields->sender, fields->recipient);
        } else {
          out_ << fmt::format("key={}\n", key);
        }
        break;
      case OutputFormat::kCsv:
        out_ << fmt::format(
            "{},{},{},{},{},{},{}\n", CsvField(key), fields ? CsvField(fields->client) : "",
            fields ? CsvField(fields->sender) : "", fields ? CsvField(fields->recipient) : "",
            StateName(state), ToUnixSeconds(record.first), ToUnixSeconds(record.last));
        break;
      case OutputFormat::kJson:
        out_ << (rows_ == 0 ? "\n" : ",\n");
        out_ << fmt::format(
            "  {{\"key\":{},\"client\":{},\"sender\":{},\"recipient\":{},\"state\":\"{}\","
            "\"first\":{},\"last\":{}}}",
            JsonString(key), fields ? JsonString(fields->client) : "null",
            fields ? JsonString(fields->sender) : "null",
            fields ? JsonString(fields->recipient) : "null", StateName(state),
            ToUnixSeconds(record.first), ToUnixSeconds(record.last));
        break;
    }
    ++rows_;
  }

  void ClientHeader() {
    if (format_ == OutputFormat::kText) {
      out_ << "STATE       COUNT LAST SEEN            CLIENT\n";
    } else if (format_ == OutputFormat::kCsv) {
      out_ << "client,count,last,state\n";
    } else {
      out_ << "[";
    }
  }

  void Client(std::string_view key, const policy::ClientRecord& record, bool whitelisted) {
    std::string_view state = whitelisted ? "whitelisted" : "counting";
    switch (format_) {
      case OutputFormat::kText:
        out_ << fmt::format("{:<11} {:>5} {} {}\n", state, record.count, FormatUtc(record.last),
                            key);
        break;
      case OutputFormat::kCsv:
        out_ << fmt::format("{},{},{},{}\n", CsvField(key), record.count,
                            ToUnixSeconds(record.last), state);
        break;
      case OutputFormat::kJson:
        out_ << (rows_ == 0 ? "\n" : ",\n");
        out_ << fmt::format("  {{\"client\":{},\"count\":{},\"last\":{},\"state\":\"{}\"}}",
                            JsonString(key), record.count, ToUnixSeconds(record.last), state);
        break;
    }
    ++rows_;
  }

  void TrapHeader() {
    if (format_ == OutputFormat::kText) {
      out_ << "STATE   UNTIL                LAST HIT             CLIENT\n";
    } else if (format_ == OutputFormat::kCsv) {
      out_ << "client,until,last_hit,state\n";
    } else {
      out_ << "[";
    }
  }

  void Trap(std::string_view key, const policy::TrapRecord& record, bool trapping) {
    std::string_view state = trapping ? "trapped" : "expired";
    switch (format_) {
      case OutputFormat::kText:
        out_ << fmt::format("{:<7} {} {} {}\n", state, FormatUtc(record.until),
                            FormatUtc(record.last_hit), key);
        break;
      case OutputFormat::kCsv:
        out_ << fmt::format("{},{},{},{}\n", CsvField(key), ToUnixSeconds(record.until),
                            ToUnixSeconds(record.last_hit), state);
        break;
      case OutputFormat::kJson:
        out_ << (rows_ == 0 ? "\n" : ",\n");
        out_ << fmt::format("  {{\"client\":{},\"until\":{},\"last_hit\":{},\"state\":\"{}\"}}",
                            JsonString(key), ToUnixSeconds(record.until),
                            ToUnixSeconds(record.last_hit), state);
        break;
    }
    ++rows_;
  }

  void Finish() {
    if (format_ == OutputFormat::kJson) out_ << (rows_ == 0 ? "]\n" : "\n]\n");
  }

 private:
  std::ostream& out_;
  OutputFormat format_;
  size_t rows_ = 0;
};

// The records of `table` (clients or traps, whose keys are client addresses) that pass
// `filter`'s client network, decoded; a malformed one is skipped with a warning.
template <typename Record>
Status ForEachClientRecord(store::Store& store, store::Table table, const TripletFilter& filter,
                           Context& c,
                           const std::function<void(std::string_view, const Record&)>& visit) {
  return store.ForEach(table, [&](std::string_view key, std::string_view value) {
    std::optional<Record> record = DecodeRecord<Record>(value);
    if (!record) {
      c.Warn(fmt::format("skipping malformed {} {}: '{}'", RecordNoun(table), Printable(key),
                         Printable(value)));
      return true;
    }
    if (filter.client) {
      std::optional<policy::IpAddress> address = policy::IpAddress::Parse(key);
      if (!address || !Overlaps(*filter.client, *address, address->bits())) return true;
    }
    visit(key, *record);
    return true;
  });
}

int RunList(const ParsedOptions& o, Context& c) {
  auto format = ParseOutputFormat(o.LastOrDefault("format"), true);
  if (!format.ok()) return c.Fail(kExitUsage, format.status().message());
  const bool clients = o.Has("clients");
  const bool traps = o.Has("traps");
  if (clients && traps) return c.Fail(kExitUsage, "--clients and --traps exclude each other");
  if (o.Has("at") && !traps) return c.Fail(kExitUsage, "--at goes with --traps");
  auto now = TimeOption(o, c);
  if (!now.ok()) return c.Fail(kExitUsage, now.status().message());
  TripletFilter filter;
  if (o.Has("client")) {
    auto network = ParseNetworkFilter("client", o.Last("client"));
    if (!network.ok()) return c.Fail(kExitUsage, network.status().message());
    filter.client = *network;
  }
  if (o.Has("sender")) filter.sender = SenderKeyPart(o.Last("sender"));
  if (o.Has("recipient")) filter.recipient = RecipientKeyPart(o.Last("recipient"));
  std::string_view state = o.LastOrDefault("state");
  if (state == "pending") {
    filter.state = TripletState::kPending;
  } else if (state == "passed") {
    filter.state = TripletState::kPassed;
  } else if (state != "all") {
    return c.Fail(kExitUsage,
                  fmt::format("--state: '{}' is not one of pending, passed, all", state));
  }
  if ((clients || traps) && (filter.sender || filter.recipient || filter.state)) {
    std::string_view listed = clients ? "--clients" : "--traps";
    return c.Fail(kExitUsage,
                  fmt::format("--sender, --recipient and --state filter triplets, not {}", listed));
  }
  if (c.config.engine.keys.privacy && (filter.NeedsClearKeys())) {
    return c.Fail(kExitUsage,
                  "with --privacy keys are SHA-1 digests: --client, --sender and --recipient "
                  "need clear keys (list without them, or filter with --state)");
  }
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());

  ListWriter writer(c.env.out, *format);
  const policy::GreylistTiming& timing = c.config.timing;
  Status walked;
  if (clients) {
    writer.ClientHeader();
    walked = ForEachClientRecord<policy::ClientRecord>(
        **store, store::Table::kClients, filter, c,
        [&](std::string_view key, const policy::ClientRecord& record) {
          writer.Client(key, record, policy::AutoWhitelisted(record, timing));
        });
  } else if (traps) {
    writer.TrapHeader();
    walked = ForEachClientRecord<policy::TrapRecord>(
        **store, store::Table::kTraps, filter, c,
        [&](std::string_view key, const policy::TrapRecord& record) {
          writer.Trap(key, record, !policy::Expired(record, *now));
        });
  } else {
    writer.TripletHeader();
    walked = (*store)->ForEach(
        store::Table::kTriplets, [&](std::string_view key, std::string_view value) {
          std::optional<policy::TripletRecord> record = policy::DecodeTriplet(value);
          if (!record) {
            c.Warn(fmt::format("skipping malformed triplet record {}: '{}'", Printable(key),
                               Printable(value)));
            return true;
          }
          std::optional<TripletFields> fields;
          if (!c.config.engine.keys.privacy) fields = ParseTripletKey(key, c.config.engine.keys);
          TripletState record_state = StateOf(*record, timing);
          if (!filter.Matches(fields ? &*fields : nullptr, record_state)) return true;
          writer.Triplet(key, fields ? &*fields : nullptr, record_state, *record);
          return true;
        });
  }
  writer.Finish();
  if (!walked.ok()) return c.StoreFailure(walked);
  return kExitOk;
}

// --- delete -------------------------------------------------------------------------------

// A stored record: its table and key.
struct RecordRef {
  store::Table table;
  std::string key;
};

// The record `delete` names: by --key (a triplet, or with --clients or --traps a record of
// that table), by a request's addresses, by --client (its auto-whitelist record) or by
// --trap (its greytrap-list record).
Result<RecordRef> DeleteTarget(const ParsedOptions& o, Context& c) {
  const bool by_request = o.Has("client-address") || o.Has("sender") || o.Has("recipient");
  if (o.Has("key") + by_request + o.Has("client") + o.Has("trap") != 1) {
    return Status::InvalidArgument(
        "give one of --key, --client-address with --sender and --recipient, --client or --trap");
  }
  if ((o.Has("clients") || o.Has("traps")) && !o.Has("key")) {
    return Status::InvalidArgument("--clients and --traps go with --key");
  }
  if (o.Has("clients") && o.Has("traps")) {
    return Status::InvalidArgument("--clients and --traps exclude each other");
  }
  if (o.Has("client-name") && !by_request && !o.Has("client")) {
    return Status::InvalidArgument("--client-name goes with --client-address or --client");
  }
  if (o.Has("trap")) {
    // The trap list is keyed by the client's own address in every --lookup-by mode.
    auto address = AddressOption(o, "trap");
    if (!address.ok()) return address.status();
    return RecordRef{store::Table::kTraps, policy::ClientKey(*address, c.config.engine.keys)};
  }
  if (o.Has("client")) {
    auto address = AddressOption(o, "client");
    if (!address.ok()) return address.status();
    auto keys = c.Keys(*address, ClientNameOption(o), "", "");
    if (!keys.ok()) return keys.status();
    return RecordRef{store::Table::kClients, std::move(keys->client)};
  }
  auto key = TripletKeyOption(o, c);
  if (!key.ok()) return key.status();
  store::Table table = o.Has("clients") ? store::Table::kClients
                       : o.Has("traps") ? store::Table::kTraps
                                        : store::Table::kTriplets;
  return RecordRef{table, std::move(*key)};
}

int RunDelete(const ParsedOptions& o, Context& c) {
  auto target = DeleteTarget(o, c);
  if (!target.ok()) return c.Fail(kExitUsage, target.status().message());
  const auto& [table, key] = *target;
  std::string_view what = RecordNoun(table);
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());
  auto value = (*store)->Get(table, key);
  if (!value.ok()) return c.StoreFailure(value.status());
  if (!*value) return c.Fail(kExitRefused, fmt::format("no {} {}", what, Printable(key)));
  if (Status deleted = (*store)->Delete(table, key); !deleted.ok()) {
    return c.StoreFailure(deleted);
  }
  c.env.out << fmt::format("deleted {} {} (was {})\n", what, Printable(key), Printable(**value));
  return kExitOk;
}

// --- pass ---------------------------------------------------------------------------------

int RunPass(const ParsedOptions& o, Context& c) {
  auto key = TripletKeyOption(o, c);
  if (!key.ok()) return c.Fail(kExitUsage, key.status().message());
  auto now_or = TimeOption(o, c);
  if (!now_or.ok()) return c.Fail(kExitUsage, now_or.status().message());
  const UnixTime now = *now_or;
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());
  auto value = (*store)->Get(store::Table::kTriplets, *key);
  if (!value.ok()) return c.StoreFailure(value.status());
  const std::string shown = Printable(*key);
  if (!*value) return c.Fail(kExitRefused, fmt::format("no triplet {}", shown));
  std::optional<policy::TripletRecord> record = policy::DecodeTriplet(**value);
  if (!record) {
    return c.Fail(kExitRefused, fmt::format("triplet {} has a malformed value '{}' (greylightd "
                                            "treats it as absent)",
                                            shown, Printable(**value)));
  }
  const policy::GreylistTiming& timing = c.config.timing;
  if (!policy::Live(record, now, timing)) {
    return c.Fail(kExitRefused, fmt::format("triplet {} was last seen more than max-age ago "
                                            "(greylightd treats it as absent)",
                                            shown));
  }
  if (StateOf(*record, timing) == TripletState::kPassed) {
    return c.Fail(kExitRefused,
                  fmt::format("triplet {} has already passed (first seen {}, last seen {})", shown,
                              FormatTime(record->first), FormatTime(record->last)));
  }
  // first = last = now - delay: the next request finds the delay over and the triplet not
  // yet successful, so it is the first accepted delivery (header, AWL count), exactly as
  // if the sender had retried on time.
  const UnixTime first = now - timing.delay;
  if (Status put =
          (*store)->Put(store::Table::kTriplets, *key, policy::EncodeTriplet({first, first}));
      !put.ok()) {
    return c.StoreFailure(put);
  }
  c.env.out << fmt::format(
      "passed triplet {}: first and last seen set to {} (now - delay {}); its next request "
      "within {} is its first accepted delivery\n",
      shown, FormatTime(first), FormatDuration(timing.delay),
      FormatDuration(timing.retry_window - timing.delay));
  return kExitOk;
}

// --- report -------------------------------------------------------------------------------

int RunReport(const ParsedOptions& o, Context& c) {
  auto format = ParseOutputFormat(o.LastOrDefault("format"), false);
  if (!format.ok()) return c.Fail(kExitUsage, format.status().message());
  std::string_view log_path = o.LastOrDefault("log");
  std::ifstream file;
  std::istream* in = &c.env.in;
  if (log_path != "-") {
    file.open(std::string(log_path));
    if (!file) {
      return c.Fail(kExitUsage,
                    fmt::format("--log: can't open {}: {}", log_path, std::strerror(errno)));
    }
    in = &file;
  }
  auto scheme = c.Scheme();
  if (!scheme.ok()) return c.Fail(kExitUsage, scheme.status().message());
  // The store first: no point reading a long log if it cannot be looked up.
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());

  MailLogScanner scanner(c.config.engine.greylist_text, *scheme);
  std::string line;
  while (std::getline(*in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    scanner.AddLine(line);
  }
  if (in->bad()) return c.Fail(kExitUsage, fmt::format("--log: error reading {}", log_path));
  auto report = scanner.Finish(
      [&](std::string_view key) { return (*store)->Get(store::Table::kTriplets, key); },
      c.config.timing);
  if (!report.ok()) return c.StoreFailure(report.status());
  c.env.out << (*format == OutputFormat::kJson ? FormatReportJson(*report)
                                               : FormatReportText(*report));
  return kExitOk;
}

// --- migrate ------------------------------------------------------------------------------

// Collects records and writes them with Store::PutMany: copying millions of records costs
// one transaction (LMDB) per batch instead of one per record.
class BatchWriter {
 public:
  static constexpr size_t kBatchRecords = 10000;
  BatchWriter(store::Store& to, store::Table table) : to_(to), table_(table) {}
  Status Add(std::string_view key, std::string_view value) {
    batch_.emplace_back(std::string(key), std::string(value));
    return batch_.size() >= kBatchRecords ? Flush() : Status::Ok();
  }
  Status Flush() {
    if (batch_.empty()) return Status::Ok();
    Status status = to_.PutMany(table_, batch_);
    batch_.clear();
    return status;
  }

 private:
  store::Store& to_;
  const store::Table table_;
  std::vector<std::pair<std::string, std::string>> batch_;
};

int RunMigrate(const ParsedOptions& o, Context& c) {
  if (!o.Has("from") || !o.Has("to")) return c.Fail(kExitUsage, "--from and --to are required");
  std::string_view from_uri = o.Last("from");
  std::string_view to_uri = o.Last("to");
  if (StoreIdentity(from_uri, c.config) == StoreIdentity(to_uri, c.config)) {
    return c.Fail(kExitUsage, fmt::format("--from and --to name the same store ({})",
                                          StoreIdentity(from_uri, c.config)));
  }
  auto from = OpenToolStore(from_uri, c.config, c.env.clock);
  if (!from.ok()) return c.StoreFailure(from.status());
  auto to = OpenToolStore(to_uri, c.config, c.env.clock, StoreUse::kCreate);
  if (!to.ok()) return c.StoreFailure(to.status());

  std::array<uint64_t, store::kAllTables.size()> counts{};
  for (store::Table table : store::kAllTables) {
    Status failed;
    uint64_t& count = counts[store::TableIndex(table)];
    BatchWriter writer(**to, table);
    Status walked = (*from)->ForEach(table, [&](std::string_view key, std::string_view value) {
      failed = writer.Add(key, value);
      if (!failed.ok()) return false;
      ++count;
      return true;
    });
    if (!walked.ok()) return c.StoreFailure(walked);
    if (failed.ok()) failed = writer.Flush();
    if (!failed.ok()) {
      return c.StoreFailure(
          Status::IoError(fmt::format("writing {} into {}: {} ({} copied so far)",
                                      store::TableName(table), to_uri, failed.message(), count)));
    }
  }
  if (Status flushed = (*to)->Flush(); !flushed.ok()) return c.StoreFailure(flushed);
  c.env.out << fmt::format(
      "migrated {} triplets, {} client records and {} trap records from {} to {}\n",
      counts[store::TableIndex(store::Table::kTriplets)],
      counts[store::TableIndex(store::Table::kClients)],
      counts[store::TableIndex(store::Table::kTraps)], from_uri, to_uri);
  return kExitOk;
}

// --- import-postgrey ----------------------------------------------------------------------

int RunImportPostgrey(const ParsedOptions& o, Context& c) {
  if (!o.Has("dbdir") || o.Last("dbdir").empty()) {
    return c.Fail(kExitUsage, "--dbdir (postgrey's database directory) is required");
  }
  std::filesystem::path postgrey_dir(std::string(o.Last("dbdir")));
  c.config.dbdir = std::string(kPostgreyImportTarget);
  std::string target_uri(o.Last("store", "lmdb:" + std::string(kPostgreyImportTarget)));
  auto source = PostgreyDatabase::Open(postgrey_dir, c.env.temp_dir);
  if (!source.ok()) return c.StoreFailure(source.status());
  auto target = OpenToolStore(target_uri, c.config, c.env.clock, StoreUse::kCreate);
  if (!target.ok()) return c.StoreFailure(target.status());

  uint64_t imported[2] = {0, 0};
  uint64_t skipped = 0;
  for (store::Table table : {store::Table::kTriplets, store::Table::kClients}) {
    Status failed;
    uint64_t& count = imported[table == store::Table::kTriplets ? 0 : 1];
    BatchWriter writer(**target, table);
    Status walked = (*source)->ForEach(table, [&](std::string_view key, std::string_view value) {
      // Written re-encoded: a value of an old postgrey with a third field becomes the
      // two fields greylight writes.
      std::optional<std::string> encoded;
      if (table == store::Table::kTriplets) {
        if (auto record = policy::DecodeTriplet(value)) encoded = policy::EncodeTriplet(*record);
      } else if (auto record = policy::DecodeClient(value)) {
        encoded = policy::EncodeClient(*record);
      }
      if (key.empty() || !encoded) {
        c.Warn(fmt::format("skipping malformed {} record '{}': value '{}'",
                           table == store::Table::kTriplets ? "triplet" : "client", Printable(key),
                           Printable(value)));
        ++skipped;
        return true;
      }
      failed = writer.Add(key, *encoded);
      if (!failed.ok()) return false;
      ++count;
      return true;
    });
    if (!walked.ok()) return c.StoreFailure(walked);
    if (failed.ok()) failed = writer.Flush();
    if (!failed.ok()) return c.StoreFailure(failed);
  }
  if (Status flushed = (*target)->Flush(); !flushed.ok()) return c.StoreFailure(flushed);
  c.env.out << fmt::format(
      "imported {} triplets and {} client records from postgrey at {} into {}{}\n", imported[0],
      imported[1], postgrey_dir.string(), target_uri,
      skipped == 0 ? "" : fmt::format(" ({} malformed records skipped)", skipped));
  if (!(*source)->has_clients()) {
    c.Warn(fmt::format("{} has no {} (postgrey ran with --auto-whitelist-clients=0?)",
                       postgrey_dir.string(), PostgreyDatabase::kClientsFile));
  }
  return kExitOk;
}

}  // namespace

std::string ToolUsage() {
  std::string usage =
      "Usage: greylight COMMAND [options]\n"
      "       greylight COMMAND --help\n\n"
      "Inspects and maintains greylightd's greylisting state. Commands work on the store\n"
      "greylightd uses (--store, or LMDB at --dbdir), while greylightd runs, and take\n"
      "greylightd's policy options (--delay, --max-age, --ipv4cidr, --privacy, whitelists...)\n"
      "so they see the records as greylightd does: give them the same values.\n\n"
      "Commands:\n";
  for (const Command& command : kCommands) {
    usage += fmt::format("  {:<16} {}\n", command.name, command.summary);
  }
  usage +=
      "\nStore URIs: lmdb: (LMDB at --dbdir), lmdb:/path/to/dbdir, redis://host:port[/db],\n"
      "redis+unix:///path[?db=N], redis+sentinel://host:port[,...]/mastername.\n\n"
      "Exit status: 0 success, 1 record absent or already passed, 2 bad arguments,\n"
      "3 store (query: policy server) unreachable or unreadable.\n";
  return usage;
}

Result<std::string> CommandUsage(std::string_view name) {
  const Command* command = FindCommand(name);
  if (command == nullptr) return Status::NotFound(fmt::format("unknown command '{}'", name));
  return UsageOf(*command);
}

int RunTool(const std::vector<std::string>& args, ToolEnvironment& env) {
  if (args.empty()) {
    env.err << ToolUsage();
    return kExitUsage;
  }
  std::string_view first = args[0];
  if (first == "-h" || first == "--help" || first == "help") {
    if (first == "help" && args.size() > 1) {
      auto usage = CommandUsage(args[1]);
      if (!usage.ok()) {
        env.err << "greylight: " << usage.status().message() << " (see greylight --help)\n";
        return kExitUsage;
      }
      env.out << *usage;
      return kExitOk;
    }
    env.out << ToolUsage();
    return kExitOk;
  }
  if (first == "--version") {
    env.out << "greylight " << kGreylightVersion << "\n";
    return kExitOk;
  }
  const Command* command = FindCommand(first);
  if (command == nullptr) {
    env.err << "greylight: unknown command '" << first << "' (see greylight --help)\n";
    return kExitUsage;
  }
  Context context(*command, env);
  std::vector<OptionSpec> table = OptionTableFor(*command);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  auto parsed = cli::ParseOptions(table, rest);
  if (!parsed.ok()) {
    return context.Fail(kExitUsage, fmt::format("{} (see greylight {} --help)",
                                                parsed.status().message(), command->name));
  }
  if (parsed->Has("help")) {
    env.out << UsageOf(*command);
    return kExitOk;
  }
  if (command->policy_options) {
    if (Status status = cli::ParsePolicyConfig(*parsed, context.config); !status.ok()) {
      return context.Fail(kExitUsage, status.message());
    }
  }
  context.config.engine.version = kGreylightVersion;
  context.store_uri = std::string(parsed->Last("store", DefaultStoreUri(context.config)));
  return command->run(*parsed, context);
}

}  // namespace greylight::tools
