// `greylight import-postgrey`.
#include <fmt/format.h>

#include <cstring>
#include <optional>
#include <ostream>

#include "policy/records.h"
#include "tools/command.h"
#include "tools/output_format.h"
#include "tools/postgrey_db.h"
#include "tools/record_copy.h"
#include "tools/record_filter.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

constexpr std::string_view kPostgreyImportTarget = "/var/lib/greylight";

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
    // Written re-encoded: a value of an old postgrey with a third field becomes the two
    // fields greylight writes.
    auto reencode = [&](std::string_view key,
                        std::string_view value) -> std::optional<std::string> {
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
        return std::nullopt;
      }
      return encoded;
    };
    CopyResult copied = CopyTable(
        [&](const store::VisitFunction& visit) { return (*source)->ForEach(table, visit); },
        **target, table, reencode);
    imported[table == store::Table::kTriplets ? 0 : 1] = copied.copied;
    skipped += copied.skipped;
    if (!copied.read.ok()) return c.StoreFailure(copied.read);
    if (!copied.write.ok()) return c.StoreFailure(copied.write);
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

constexpr Command kImportPostgreyCommand = {
    "import-postgrey",
    "--dbdir=POSTGREY_DIR [--store=URI]",
    "import postgrey's Berkeley DB files",
    "Reads postgrey's postgrey.db (triplets) and postgrey_clients.db (auto-whitelist) from\n"
    "--dbdir and writes every record into the greylight store --store, overwriting records\n"
    "with the same keys, then reports the counts. postgrey must be stopped; its files are\n"
    "copied and recovered in a temporary directory, never changed. A record whose value is\n"
    "not in postgrey's format is skipped with a warning naming its key.\n",
    kImportOptions,
    false,
    RunImportPostgrey};

}  // namespace greylight::tools
