#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/greylist_state.h"
#include "store/store.h"
#include "util/log.h"

namespace greylight::store {

// Helpers shared by the backends that run policy::Decide in-process, so that decoding,
// the corrupt-record rule and the write-back are written once.

// Decodes a stored value of `table`; a malformed value is logged and treated as absent.
template <typename Record>
std::optional<Record> DecodeOrWarn(Table table, std::string_view key,
                                   std::optional<std::string_view> value) {
  if (!value) return std::nullopt;
  std::optional<Record> record;
  if constexpr (std::is_same_v<Record, policy::TripletRecord>) {
    record = policy::DecodeTriplet(*value);
  } else if constexpr (std::is_same_v<Record, policy::ClientRecord>) {
    record = policy::DecodeClient(*value);
  } else {
    static_assert(std::is_same_v<Record, policy::TrapRecord>);
    record = policy::DecodeTrap(*value);
  }
  if (!record) {
    log::Warning("ignoring corrupt {} record {}: '{}'", TableName(table), log::Escaped(key),
                 log::Escaped(value->substr(0, 64)));
  }
  return record;
}

// Builds the PriorState for `keys` from `read(table, key) -> optional<string_view>`.
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
  prior.triplet =
      policy::Live(DecodeOrWarn<policy::TripletRecord>(Table::kTriplets, keys.triplet,
                                                       read(Table::kTriplets, keys.triplet)),
                   now, timing);
  if (!keys.trap.empty()) {
    prior.trap = policy::Live(
        DecodeOrWarn<policy::TrapRecord>(Table::kTraps, keys.trap, read(Table::kTraps, keys.trap)),
        now);
  }
  return prior;
}

// policy::Decide for `keys` over `prior`.
inline policy::Transition DecideFor(const CheckKeys& keys, const policy::PriorState& prior,
                                    UnixTime now, const policy::GreylistTiming& timing) {
  return policy::Decide(prior, now, timing, keys.trap_hit && !keys.trap.empty());
}

// Writes the records a transition produced through `write(table, key, encoded_value)`.
template <typename WriteFunction>
void ApplyTransition(const CheckKeys& keys, const policy::Transition& transition,
                     WriteFunction&& write) {
  if (transition.client_write && !keys.client.empty()) {
    write(Table::kClients, keys.client, policy::EncodeClient(*transition.client_write));
  }
  if (transition.triplet_write) {
    write(Table::kTriplets, keys.triplet, policy::EncodeTriplet(*transition.triplet_write));
  }
  if (transition.trap_write && !keys.trap.empty()) {
    write(Table::kTraps, keys.trap, policy::EncodeTrap(*transition.trap_write));
  }
}

// True if the stored `value` of `table` may be deleted by the background expiry:
// malformed, or expired by policy::Expired().
inline bool ShouldExpire(Table table, std::string_view value, UnixTime now,
                         const policy::GreylistTiming& timing) {
  switch (table) {
    case Table::kTriplets: {
      auto record = policy::DecodeTriplet(value);
      return !record || policy::Expired(*record, now, timing);
    }
    case Table::kClients: {
      auto record = policy::DecodeClient(value);
      return !record || policy::Expired(*record, now, timing);
    }
    case Table::kTraps: {
      auto record = policy::DecodeTrap(value);
      return !record || policy::Expired(*record, now);
    }
  }
  return false;
}

}  // namespace greylight::store
