#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/greylist_state.h"
#include "util/clock.h"
#include "util/status.h"

namespace greylight::store {

// The two tables postgrey keeps: triplets ("first,last") and the client auto-whitelist
// ("count,last"), in postgrey's key and value formats (policy/records.h); and greylight's
// greytrap list ("until,last_hit", keyed by the client's address) and reply records
// ("count,last", keyed by policy::ReplyKey: "<remote address>/<local user>").
enum class Table { kTriplets, kClients, kTraps, kReplies };
inline constexpr std::array<Table, 4> kAllTables = {Table::kTriplets, Table::kClients,
                                                    Table::kTraps, Table::kReplies};
constexpr size_t TableIndex(Table table) { return static_cast<size_t>(table); }
std::string_view TableName(Table table);

// The keys one request touches.
struct CheckKeys {
  std::string triplet;
  std::string client;     // empty when the auto-whitelist is disabled
  std::string trap = {};  // the client's trap-list key; empty when greytraps are disabled
  bool trap_hit = false;  // the recipient is a greytrap: put the client on the trap list
  // The reply key of (sender, recipient) (policy::ReplyKey); empty for the null sender. A
  // live reply record there passes the request (policy::Decide, after the greytrap list and
  // the auto-whitelist).
  std::string reply = {};

  // A trap hit that counts: greytraps enabled and the recipient a trap.
  bool counted_trap_hit() const { return trap_hit && !trap.empty(); }
  // The key of `table`'s record among these.
  const std::string& Of(Table table) const {
    switch (table) {
      case Table::kClients:
        return client;
      case Table::kTraps:
        return trap;
      case Table::kReplies:
        return reply;
      case Table::kTriplets:
        break;
    }
    return triplet;
  }
};

// Counts a backend can report cheaply, for metrics and `greylight stats`. Unknown values
// stay empty.
struct StoreStats {
  std::optional<uint64_t> triplets;
  std::optional<uint64_t> clients;
  std::optional<uint64_t> traps;
  std::optional<uint64_t> replies;
  uint64_t expired_total = 0;  // records removed by the background expiry so far
  // Network backends: whether every server the store needs is connected right now, and the
  // pipelined exchanges so far (each may carry many requests). Empty for embedded ones.
  std::optional<bool> connected;
  std::optional<uint64_t> round_trips;
  // Checks answered without the check script (a read whose decision writes nothing, a read
  // and the creation of an absent triplet, a read and a commit of what it decided if nothing
  // changed since), and checks that ran it (trap hits, and checks whose records changed
  // between their read and their write).
  std::optional<uint64_t> scriptless_checks;
  std::optional<uint64_t> check_script_runs;
};

using CheckCallback = std::function<void(Result<policy::Transition>)>;
using ReplyCallback = std::function<void(Result<policy::ReplyRecord>)>;
using VisitFunction = std::function<bool(std::string_view key, std::string_view value)>;

// Greylisting state. Every backend implements Check() as one atomic read-decide-write, so
// two requests for the same triplet or client (even from different MX hosts sharing the
// store) cannot lose an update. The decision itself is always policy::Decide(): a backend
// only supplies the records and stores the result.
//
// Thread-safety: all methods may be called from any thread.
class Store {
 public:
  virtual ~Store() = default;

  // Reads the live records for `keys` (malformed and max-age-expired ones count as
  // absent), applies policy::Decide at `now` (with keys.trap_hit) and writes the
  // transition's records.
  // Calls `done` exactly once: before returning (embedded backends) or later from a
  // backend thread (network backends). On a backend fault `done` gets a non-ok Status and
  // nothing is written.
  virtual void Check(const CheckKeys& keys, UnixTime now, CheckCallback done) = 0;

  // Records one outbound message for the reply key `key` (policy::ReplyKey of the message's
  // recipient and sender) at `now`: reads the live record, writes policy::RecordOutbound of
  // it, atomically, and gives `done` the record written. The record lives max-age after
  // `now`. Calls `done` exactly once, as Check does; on a backend fault with a non-ok
  // Status, nothing written.
  virtual void RecordReply(std::string_view key, UnixTime now, ReplyCallback done) = 0;

  // Raw access for tools, migration and tests. Values are in postgrey's formats.
  virtual Result<std::optional<std::string>> Get(Table table, std::string_view key) = 0;
  virtual Status Put(Table table, std::string_view key, std::string_view value) = 0;
  virtual Status Delete(Table table, std::string_view key) = 0;
  // Stores many records at once (migration, import); backends batch them where they can.
  virtual Status PutMany(Table table,
                         const std::vector<std::pair<std::string, std::string>>& records) {
    for (const auto& [key, value] : records) {
      if (Status status = Put(table, key, value); !status.ok()) return status;
    }
    return Status::Ok();
  }
  // Calls `visit` for every record of `table` until it returns false.
  virtual Status ForEach(Table table, const VisitFunction& visit) = 0;

  // Deletes up to `max_records` records that policy::Expired() says may go, continuing
  // where the previous call stopped; returns how many were deleted.
  virtual Result<size_t> ExpireSome(UnixTime now, size_t max_records) = 0;

  // Makes every write acknowledged so far durable. Called at shutdown.
  virtual Status Flush() = 0;

  virtual StoreStats Stats() { return {}; }
};

}  // namespace greylight::store
