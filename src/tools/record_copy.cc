#include "tools/record_copy.h"

#include <utility>
#include <vector>

namespace greylight::tools {
namespace {

constexpr size_t kBatchRecords = 10000;

}  // namespace

CopyResult CopyTable(const RecordWalk& walk, store::Store& to, store::Table table,
                     const RecordConvert& convert) {
  CopyResult result;
  std::vector<std::pair<std::string, std::string>> batch;
  auto flush = [&] {
    if (batch.empty()) return true;
    result.write = to.PutMany(table, batch);
    if (result.write.ok()) result.copied += batch.size();
    batch.clear();
    return result.write.ok();
  };
  result.read = walk([&](std::string_view key, std::string_view value) {
    if (convert) {
      std::optional<std::string> converted = convert(key, value);
      if (!converted) {
        ++result.skipped;
        return true;
      }
      batch.emplace_back(std::string(key), std::move(*converted));
    } else {
      batch.emplace_back(std::string(key), std::string(value));
    }
    return batch.size() < kBatchRecords || flush();
  });
  if (result.read.ok() && result.write.ok()) flush();
  return result;
}

}  // namespace greylight::tools
