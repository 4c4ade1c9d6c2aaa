#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "policy/greylist_state.h"
#include "store/store.h"
#include "util/log.h"

namespace greylight::store {

// Helpers shared by the backends, so that decoding by table, the corrupt-record rule, the
// expiry rules and the write-back are written once. The rules themselves are policy's
// (policy::Live, ExpiresAt, Expired); these only dispatch over store::Table.

// A decoded record of any table.
using AnyRecord = std::variant<policy::TripletRecord, policy::ClientRecord, policy::TrapRecord,
                               policy::ReplyRecord>;

// The one decode dispatcher: `value` of `table` through the policy codec; nullopt if
// malformed.
std::optional<AnyRecord> DecodeRecord(Table table, std::string_view value);

// policy::ExpiresAt / policy::Expired of a record of any table.
UnixTime ExpiresAt(const AnyRecord& record, const policy::GreylistTiming& timing);
bool Expired(const AnyRecord& record, UnixTime now, const policy::GreylistTiming& timing);

// True if the stored `value` of `table` may be deleted by the background expiry:
// malformed, or policy::Expired().
bool ShouldExpire(Table table, std::string_view value, UnixTime now,
                  const policy::GreylistTiming& timing);

// Logs one warning about a malformed stored value.
void WarnCorrupt(Table table, std::string_view key, std::string_view value);

// Decodes a stored value of `table` as a `Record`; a malformed value is logged and treated
// as absent. REQUIRES: `Record` is the record type of `table`.
template <typename Record>
std::optional<Record> DecodeOrWarn(Table table, std::string_view key,
                                   std::optional<std::string_view> value) {
  if (!value) return std::nullopt;
  std::optional<AnyRecord> record = DecodeRecord(table, *value);
  if (!record) {
    WarnCorrupt(table, key, *value);
    return std::nullopt;
  }
  return std::get<Record>(*record);
}

// Builds the PriorState for `keys` from `read(table, key) -> optional<string_view>`. The
// triplet is read only when policy::ReadsTriplet says Decide looks at it.
template <typename ReadFunction>
policy::PriorState ReadPrior(const CheckKeys& keys, UnixTime now,
                             const policy::GreylistTiming& timing, ReadFunction&& read) {
  policy::PriorState prior;
  if (!keys.client.empty()) {
    prior.client =
        policy::Live(DecodeOrWarn<policy::ClientRecord>(Table::kClients, keys.client,
                                                        read(Table::kClients, keys.client)),
                     now, timing);
  }
  if (!keys.trap.empty()) {
    prior.trap = policy::Live(
        DecodeOrWarn<policy::TrapRecord>(Table::kTraps, keys.trap, read(Table::kTraps, keys.trap)),
        now);
  }
  if (!keys.reply.empty()) {
    prior.reply = policy::Live(DecodeOrWarn<policy::ReplyRecord>(Table::kReplies, keys.reply,
                                                                 read(Table::kReplies, keys.reply)),
                               now, timing);
  }
  if (policy::ReadsTriplet(prior, now, timing, keys.counted_trap_hit())) {
    prior.triplet =
        policy::Live(DecodeOrWarn<policy::TripletRecord>(Table::kTriplets, keys.triplet,
                                                         read(Table::kTriplets, keys.triplet)),
                     now, timing);
  }
  return prior;
}

// policy::Decide for `keys` over `prior`.
inline policy::Transition DecideFor(const CheckKeys& keys, const policy::PriorState& prior,
                                    UnixTime now, const policy::GreylistTiming& timing) {
  return policy::Decide(prior, now, timing, keys.counted_trap_hit());
}

// The reply record an outbound message at `now` writes over the stored `value` of reply
// key `key` (policy::RecordOutbound; malformed and expired values count as absent).
policy::ReplyRecord RecordedReply(std::string_view key, std::optional<std::string_view> value,
                                  UnixTime now, const policy::GreylistTiming& timing);

// The policy codec's encoding of a record of any table.
std::string EncodeRecord(const AnyRecord& record);

// Calls `visit(table, key, record)` for each record a transition writes.
template <typename VisitFunction>
void ForEachWrite(const CheckKeys& keys, const policy::Transition& transition,
                  VisitFunction&& visit) {
  if (transition.client_write && !keys.client.empty()) {
    visit(Table::kClients, keys.client, AnyRecord(*transition.client_write));
  }
  if (transition.triplet_write) {
    visit(Table::kTriplets, keys.triplet, AnyRecord(*transition.triplet_write));
  }
  if (transition.trap_write && !keys.trap.empty()) {
    visit(Table::kTraps, keys.trap, AnyRecord(*transition.trap_write));
  }
}

// Writes the records a transition produced through `write(table, key, encoded_value)`.
template <typename WriteFunction>
void ApplyTransition(const CheckKeys& keys, const policy::Transition& transition,
                     WriteFunction&& write) {
  ForEachWrite(keys, transition, [&](Table table, const std::string& key, const AnyRecord& record) {
    write(table, key, EncodeRecord(record));
  });
}

}  // namespace greylight::store
