#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.h"
#include "util/status.h"

namespace greylight::tools {

// Visits every record of one table of a source (a store's ForEach, postgrey's files...).
using RecordWalk = std::function<Status(const store::VisitFunction& visit)>;
// What to write for a record: its value re-encoded, or nullopt to skip it.
using RecordConvert =
    std::function<std::optional<std::string>(std::string_view key, std::string_view value)>;

struct CopyResult {
  uint64_t copied = 0;
  uint64_t skipped = 0;
  Status read = Status::Ok();   // the source's error, if walking it failed
  Status write = Status::Ok();  // the target's error, if writing failed
  bool ok() const { return read.ok() && write.ok(); }
};

// Copies the records `walk` visits into `table` of `to`, through `convert` when given
// (values unchanged otherwise), in batches of Store::PutMany: millions of records cost one
// transaction per batch (LMDB), not one per record. Stops at the first error.
CopyResult CopyTable(const RecordWalk& walk, store::Store& to, store::Table table,
                     const RecordConvert& convert = {});

}  // namespace greylight::tools
