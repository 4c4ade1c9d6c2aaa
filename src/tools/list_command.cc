// `greylight list`.
#include <fmt/format.h>

#include <cstring>
#include <functional>
#include <optional>
#include <ostream>

#include "policy/greylist_state.h"
#include "policy/records.h"
#include "policy/triplet_key.h"
#include "tools/command.h"
#include "tools/output_format.h"
#include "tools/record_filter.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

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
    {"--replies", Arity::kFlag, "", "",
     "list the reply records instead of the triplets: each remote address, the local user who "
     "wrote to it, how many messages and the last one (the remote address' replies to that "
     "user pass)",
     "greylight"},
    {"--at", Arity::kValue, "UNIXTIME", "the current time",
     "with --traps or --replies: judge whether a record is still live at this Unix time",
     "greylight", 0, kMaxUnixTime},
};

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

  void ReplyHeader() {
    if (format_ == OutputFormat::kText) {
      out_ << "STATE   COUNT LAST SENT            REMOTE LOCAL\n";
    } else if (format_ == OutputFormat::kCsv) {
      out_ << "key,remote,local,count,last,state\n";
    } else {
      out_ << "[";
    }
  }

  void Reply(std::string_view key, const ReplyFields* fields, const policy::ReplyRecord& record,
             bool live) {
    std::string_view state = live ? "live" : "expired";
    switch (format_) {
      case OutputFormat::kText:
        out_ << fmt::format("{:<7} {:>5} {} ", state, record.count, FormatUtc(record.last));
        if (fields != nullptr) {
          out_ << fmt::format("{} {}\n", fields->remote, fields->local);
        } else {
          out_ << fmt::format("key={}\n", key);
        }
        break;
      case OutputFormat::kCsv:
        out_ << fmt::format(
            "{},{},{},{},{},{}\n", CsvField(key), fields ? CsvField(fields->remote) : "",
            fields ? CsvField(fields->local) : "", record.count, ToUnixSeconds(record.last), state);
        break;
      case OutputFormat::kJson:
        out_ << (rows_ == 0 ? "\n" : ",\n");
        out_ << fmt::format(
            "  {{\"key\":{},\"remote\":{},\"local\":{},\"count\":{},\"last\":{},"
            "\"state\":\"{}\"}}",
            JsonString(key), fields ? JsonString(fields->remote) : "null",
            fields ? JsonString(fields->local) : "null", record.count, ToUnixSeconds(record.last),
            state);
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
      if (!address || !filter.client->Contains(*address)) return true;
    }
    visit(key, *record);
    return true;
  });
}

int RunList(const ParsedOptions& o, Context& c) {
  auto format = ParseOutputFormat(o.LastOrDefault("format"), true);
  if (!format.ok()) return c.Fail(kExitConfig, format.status().message());
  const bool clients = o.Has("clients");
  const bool traps = o.Has("traps");
  const bool replies = o.Has("replies");
  if (clients + traps + replies > 1) {
    return c.Fail(kExitUsage, "--clients, --traps and --replies exclude each other");
  }
  if (o.Has("at") && !traps && !replies) {
    return c.Fail(kExitUsage, "--at goes with --traps or --replies");
  }
  auto now = TimeOption(o, c);
  if (!now.ok()) return c.Fail(kExitConfig, now.status().message());
  TripletFilter filter;
  if (o.Has("client")) {
    auto network = ParseNetworkOption("client", o.Last("client"));
    if (!network.ok()) return c.Fail(kExitConfig, network.status().message());
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
    return c.Fail(kExitConfig,
                  fmt::format("--state: '{}' is not one of pending, passed, all", state));
  }
  if (replies && filter.client)
    return c.Fail(kExitConfig, "--client filters clients, not --replies");
  if ((clients || traps || replies) && (filter.sender || filter.recipient || filter.state)) {
    std::string_view listed = clients ? "--clients" : traps ? "--traps" : "--replies";
    return c.Fail(kExitConfig,
                  fmt::format("--sender, --recipient and --state filter triplets, not {}", listed));
  }
  if (c.config.engine.keys.privacy && (filter.NeedsClearKeys())) {
    return c.Fail(kExitConfig,
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
  } else if (replies) {
    writer.ReplyHeader();
    walked = (*store)->ForEach(
        store::Table::kReplies, [&](std::string_view key, std::string_view value) {
          std::optional<policy::ReplyRecord> record = policy::DecodeReply(value);
          if (!record) {
            c.Warn(fmt::format("skipping malformed {} {}: '{}'", RecordNoun(store::Table::kReplies),
                               Printable(key), Printable(value)));
            return true;
          }
          std::optional<ReplyFields> fields;
          if (!c.config.engine.keys.privacy) fields = ParseReplyKey(key);
          writer.Reply(key, fields ? &*fields : nullptr, *record,
                       !policy::Expired(*record, *now, timing));
          return true;
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

}  // namespace

constexpr Command kListCommand = {
    "list",
    "[--client=NET] [--sender=S] [--recipient=R] [--state=S] [--format=F] "
    "[--clients | --traps [--at=T] | --replies [--at=T]]",
    "list triplets, or the auto-whitelist records, the greytrap list or the reply records",
    "Lists triplets with their key split into client network, sender and recipient, their\n"
    "first and last sighting and their state. --clients lists the auto-whitelist records\n"
    "(count, last seen, whitelisted or counting), --traps the greytrap list (until when\n"
    "the client is trapped, its last trap hit, trapped or expired), --replies the reply\n"
    "records (remote address, local user, outbound messages counted, the last one, live or\n"
    "expired). With --privacy keys are SHA-1 digests: they are listed as they are, and\n"
    "--client, --sender and --recipient cannot be used.\n",
    kListOptions,
    true,
    RunList};

}  // namespace greylight::tools
