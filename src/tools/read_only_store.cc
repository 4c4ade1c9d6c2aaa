#include "tools/read_only_store.h"

#include "store/record_access.h"

namespace greylight::tools {

ReadOnlyStore::ReadOnlyStore(store::Store& inner, const policy::GreylistTiming& timing)
    : inner_(inner), timing_(timing) {}

void ReadOnlyStore::Check(const store::CheckKeys& keys, UnixTime now, store::CheckCallback done) {
  for (auto& read : read_) read.reset();
  failure_ = Status::Ok();
  policy::PriorState prior = store::ReadPrior(
      keys, now, timing_,
      [&](store::Table table, std::string_view key) -> std::optional<std::string_view> {
        auto value = inner_.Get(table, key);
        if (!value.ok()) {
          if (failure_.ok()) failure_ = value.status();
          return std::nullopt;
        }
        auto& slot = read_[store::TableIndex(table)];
        slot = std::move(value.value());
        if (!*slot) return std::nullopt;
        return std::string_view(**slot);
      });
  if (!failure_.ok()) {
    done(failure_);
    return;
  }
  done(store::DecideFor(keys, prior, now, timing_));
}

void ReadOnlyStore::RecordReply(std::string_view, UnixTime, store::ReplyCallback done) {
  done(Status::InvalidArgument("explain writes nothing"));
}

Result<std::optional<std::string>> ReadOnlyStore::Get(store::Table table, std::string_view key) {
  return inner_.Get(table, key);
}

Status ReadOnlyStore::Put(store::Table, std::string_view, std::string_view) {
  return Status::InvalidArgument("explain writes nothing");
}

Status ReadOnlyStore::Delete(store::Table, std::string_view) {
  return Status::InvalidArgument("explain writes nothing");
}

Status ReadOnlyStore::ForEach(store::Table table, const store::VisitFunction& visit) {
  return inner_.ForEach(table, visit);
}

Result<size_t> ReadOnlyStore::ExpireSome(UnixTime, size_t) { return size_t{0}; }

Status ReadOnlyStore::Flush() { return Status::Ok(); }

}  // namespace greylight::tools
