// `greylight delete`.
#include <fmt/format.h>

#include <cstring>
#include <ostream>

#include "policy/reply_key.h"
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

constexpr OptionSpec kDeleteOptions[] = {
    {"--key", Arity::kValue, "KEY", "", "the stored key of the record to delete", "greylight"},
    {"--clients", Arity::kFlag, "", "", "--key names a client auto-whitelist record, not a triplet",
     "greylight"},
    {"--traps", Arity::kFlag, "", "", "--key names a greytrap-list record, not a triplet",
     "greylight"},
    {"--replies", Arity::kFlag, "", "",
     "delete a reply record: the one --key names, or with --sender and --recipient the one "
     "that lets mail from that sender to that recipient pass as a reply",
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

// A stored record: its table and key.
struct RecordRef {
  store::Table table;
  std::string key;
};

// The reply record `delete --replies` names: by --key, or by the (sender, recipient) of the
// mail it lets through.
Result<RecordRef> ReplyTarget(const ParsedOptions& o, Context& c) {
  if (o.Has("clients") || o.Has("traps")) {
    return Status::InvalidArgument("--clients, --traps and --replies exclude each other");
  }
  if (o.Has("client-address") || o.Has("client-name") || o.Has("client") || o.Has("trap")) {
    return Status::InvalidArgument(
        "--replies takes --key, or --sender and --recipient (a reply record has no client)");
  }
  if (o.Has("key") == (o.Has("sender") || o.Has("recipient"))) {
    return Status::InvalidArgument("give either --key or --sender and --recipient");
  }
  if (o.Has("key")) {
    if (o.Last("key").empty()) return Status::InvalidArgument("--key: empty key");
    return RecordRef{store::Table::kReplies, std::string(o.Last("key"))};
  }
  std::string sender = SenderOption(o);
  if (!o.Has("recipient") || sender.empty()) {
    return Status::InvalidArgument("--sender (not the null sender) and --recipient go together");
  }
  return RecordRef{store::Table::kReplies,
                   policy::ReplyKey(sender, o.Last("recipient"), c.config.engine.keys)};
}

// The record `delete` names: by --key (a triplet, or with --clients or --traps a record of
// that table), by a request's addresses, by --client (its auto-whitelist record), by
// --trap (its greytrap-list record) or with --replies (ReplyTarget).
Result<RecordRef> DeleteTarget(const ParsedOptions& o, Context& c) {
  if (o.Has("replies")) return ReplyTarget(o, c);
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
  if (!target.ok()) return c.Fail(kExitConfig, target.status().message());
  const auto& [table, key] = *target;
  std::string_view what = RecordNoun(table);
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());
  auto value = (*store)->Get(table, key);
  if (!value.ok()) return c.StoreFailure(value.status());
  if (!*value) {
    return c.Fail(kExitAbsent, fmt::format("no {} {}{}", what, Printable(key), SpfKeyHint(o, c)));
  }
  if (Status deleted = (*store)->Delete(table, key); !deleted.ok()) {
    return c.StoreFailure(deleted);
  }
  c.env.out << fmt::format("deleted {} {} (was {})\n", what, Printable(key), Printable(**value));
  return kExitOk;
}

}  // namespace

constexpr Command kDeleteCommand = {
    "delete",
    "(--key=KEY [--clients|--traps|--replies] | --client-address=A [--client-name=N] "
    "--sender=S --recipient=R | --client=A [--client-name=N] | --trap=A | --replies "
    "--sender=S --recipient=R)",
    "delete one triplet, auto-whitelist record, greytrap-list record or reply record",
    "Deletes the triplet named by its key or by a request's addresses, the auto-whitelist\n"
    "record of a client (its domain's with --lookup-by=domain|smart and a verified\n"
    "--client-name), takes a client off the greytrap list, or deletes the reply record that\n"
    "lets mail from --sender to --recipient pass (--replies), so that mail is greylisted\n"
    "again. Exits 4 if there is no such record.\n",
    kDeleteOptions,
    true,
    RunDelete};

}  // namespace greylight::tools
