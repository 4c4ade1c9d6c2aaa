// `greylight migrate`.
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <ostream>

#include "tools/command.h"
#include "tools/record_copy.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

constexpr OptionSpec kMigrateOptions[] = {
    {"--from", Arity::kValue, "URI", "", "the store to copy from (required; see --store)",
     "greylight"},
    {"--to", Arity::kValue, "URI", "", "the store to copy into, created if needed (required)",
     "greylight"},
};

int RunMigrate(const ParsedOptions& o, Context& c) {
  if (!o.Has("from") || !o.Has("to")) return c.Fail(kExitUsage, "--from and --to are required");
  std::string_view from_uri = o.Last("from");
  std::string_view to_uri = o.Last("to");
  if (StoreIdentity(from_uri, c.config) == StoreIdentity(to_uri, c.config)) {
    return c.Fail(kExitConfig, fmt::format("--from and --to name the same store ({})",
                                           StoreIdentity(from_uri, c.config)));
  }
  auto from = OpenToolStore(from_uri, c.config, c.env.clock);
  if (!from.ok()) return c.StoreFailure(from.status());
  auto to = OpenToolStore(to_uri, c.config, c.env.clock, StoreUse::kCreate);
  if (!to.ok()) return c.StoreFailure(to.status());

  std::array<uint64_t, store::kAllTables.size()> counts{};
  for (store::Table table : store::kAllTables) {
    CopyResult copied =
        CopyTable([&](const store::VisitFunction& visit) { return (*from)->ForEach(table, visit); },
                  **to, table);
    counts[store::TableIndex(table)] = copied.copied;
    if (!copied.read.ok()) return c.StoreFailure(copied.read);
    if (!copied.write.ok()) {
      return c.StoreFailure(Status::IoError(fmt::format("writing {} into {}: {} ({} copied so far)",
                                                        store::TableName(table), to_uri,
                                                        copied.write.message(), copied.copied)));
    }
  }
  if (Status flushed = (*to)->Flush(); !flushed.ok()) return c.StoreFailure(flushed);
  c.env.out << fmt::format(
      "migrated {} triplets, {} client records, {} trap records and {} reply records from {} "
      "to {}\n",
      counts[store::TableIndex(store::Table::kTriplets)],
      counts[store::TableIndex(store::Table::kClients)],
      counts[store::TableIndex(store::Table::kTraps)],
      counts[store::TableIndex(store::Table::kReplies)], from_uri, to_uri);
  return kExitOk;
}

}  // namespace

constexpr Command kMigrateCommand = {
    "migrate",
    "--from=URI --to=URI [options]",
    "copy every record from one store to another",
    "Copies every triplet, client, greytrap-list and reply record, values unchanged, from the\n"
    "store --from into the store --to (created if needed; existing records with the same\n"
    "keys are overwritten) and reports the counts. lmdb: in either means LMDB at --dbdir.\n",
    kMigrateOptions,
    true,
    RunMigrate};

}  // namespace greylight::tools
