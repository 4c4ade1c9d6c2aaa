#pragma once

#include <map>
#include <mutex>
#include <string>

#include "store/store.h"

namespace greylight::store {

// An in-process store for tests of the engine and for the conformance suite's reference.
// Thread-safe through one mutex. Not persistent.
class MemoryStore final : public Store {
 public:
  explicit MemoryStore(policy::GreylistTiming timing) : timing_(timing) {}

  void Check(const CheckKeys& keys, UnixTime now, CheckCallback done) override;
  void RecordReply(std::string_view key, UnixTime now, ReplyCallback done) override;
  Result<std::optional<std::string>> Get(Table table, std::string_view key) override;
  Status Put(Table table, std::string_view key, std::string_view value) override;
  Status Delete(Table table, std::string_view key) override;
  Status ForEach(Table table, const VisitFunction& visit) override;
  Result<size_t> ExpireSome(UnixTime now, size_t max_records) override;
  Status Flush() override { return Status::Ok(); }

 private:
  using Map = std::map<std::string, std::string, std::less<>>;
  Map& TableFor(Table table) { return tables_[TableIndex(table)]; }

  const policy::GreylistTiming timing_;
  std::mutex mutex_;
  std::array<Map, kAllTables.size()> tables_;
};

}  // namespace greylight::store
