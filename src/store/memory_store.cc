#include "store/memory_store.h"

#include "store/record_access.h"

namespace greylight::store {

void MemoryStore::Check(const CheckKeys& keys, UnixTime now, CheckCallback done) {
  policy::Transition transition;
  {
    std::lock_guard lock(mutex_);
    auto read = [this](Table table, const std::string& key) -> std::optional<std::string_view> {
      auto& map = TableFor(table);
      auto it = map.find(key);
      if (it == map.end()) return std::nullopt;
      return std::string_view(it->second);
    };
    policy::PriorState prior = ReadPrior(keys, now, timing_, read);
    transition = DecideFor(keys, prior, now, timing_);
    ApplyTransition(keys, transition,
                    [this](Table table, const std::string& key, std::string value) {
                      TableFor(table)[key] = std::move(value);
                    });
  }
  done(std::move(transition));
}

void MemoryStore::RecordReply(std::string_view key, UnixTime now, ReplyCallback done) {
  policy::ReplyRecord record;
  {
    std::lock_guard lock(mutex_);
    Map& replies = TableFor(Table::kReplies);
    auto it = replies.find(key);
    record = RecordedReply(
        key, it == replies.end() ? std::nullopt : std::optional<std::string_view>(it->second), now,
        timing_);
    replies[std::string(key)] = policy::EncodeReply(record);
  }
  done(record);
}

Result<std::optional<std::string>> MemoryStore::Get(Table table, std::string_view key) {
  std::lock_guard lock(mutex_);
  auto& map = TableFor(table);
  auto it = map.find(key);
  if (it == map.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Status MemoryStore::Put(Table table, std::string_view key, std::string_view value) {
  std::lock_guard lock(mutex_);
  TableFor(table)[std::string(key)] = std::string(value);
  return Status::Ok();
}

Status MemoryStore::Delete(Table table, std::string_view key) {
  std::lock_guard lock(mutex_);
  auto& map = TableFor(table);
  auto it = map.find(key);
  if (it != map.end()) map.erase(it);
  return Status::Ok();
}

Status MemoryStore::ForEach(Table table, const VisitFunction& visit) {
  std::lock_guard lock(mutex_);
  for (const auto& [key, value] : TableFor(table)) {
    if (!visit(key, value)) break;
  }
  return Status::Ok();
}

Result<size_t> MemoryStore::ExpireSome(UnixTime now, size_t max_records) {
  std::lock_guard lock(mutex_);
  size_t deleted = 0;
  for (Table table : kAllTables) {
    auto& map = TableFor(table);
    for (auto it = map.begin(); it != map.end() && deleted < max_records;) {
      if (ShouldExpire(table, it->second, now, timing_)) {
        it = map.erase(it);
        ++deleted;
      } else {
        ++it;
      }
    }
  }
  return deleted;
}

}  // namespace greylight::store
