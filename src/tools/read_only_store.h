#pragma once

#include <array>
#include <optional>
#include <string>

#include "policy/greylist_state.h"
#include "store/store.h"

namespace greylight::tools {

// A Store that decides as the store it wraps but never writes, for `greylight explain`:
// Check reads the records through the wrapped store's Get, applies policy::Decide as every
// in-process backend does (store/record_access.h) and keeps the raw values it read, for
// the explanation. Writes are refused. Single-threaded use only.
class ReadOnlyStore final : public store::Store {
 public:
  // `inner` must outlive this store; `timing` is the store's greylisting rules.
  ReadOnlyStore(store::Store& inner, const policy::GreylistTiming& timing);

  void Check(const store::CheckKeys& keys, UnixTime now, store::CheckCallback done) override;
  // Refused: explain records nothing.
  void RecordReply(std::string_view key, UnixTime now, store::ReplyCallback done) override;
  Result<std::optional<std::string>> Get(store::Table table, std::string_view key) override;
  Status Put(store::Table table, std::string_view key, std::string_view value) override;
  Status Delete(store::Table table, std::string_view key) override;
  Status ForEach(store::Table table, const store::VisitFunction& visit) override;
  Result<size_t> ExpireSome(UnixTime now, size_t max_records) override;
  Status Flush() override;

  // What the last Check read from `table`: nullopt if it did not read it, else the stored
  // value (nullopt inside when the key was absent).
  const std::optional<std::optional<std::string>>& Read(store::Table table) const {
    return read_[store::TableIndex(table)];
  }
  // The wrapped store's error if the last Check failed reading, else Ok.
  const Status& failure() const { return failure_; }

 private:
  store::Store& inner_;
  const policy::GreylistTiming timing_;
  std::array<std::optional<std::optional<std::string>>, store::kAllTables.size()> read_;
  Status failure_ = Status::Ok();
};

}  // namespace greylight::tools
