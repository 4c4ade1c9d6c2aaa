#include "store/record_access.h"

namespace greylight::store {

std::optional<AnyRecord> DecodeRecord(Table table, std::string_view value) {
  switch (table) {
    case Table::kTriplets:
      if (auto record = policy::DecodeTriplet(value)) return AnyRecord(*record);
      return std::nullopt;
    case Table::kClients:
      if (auto record = policy::DecodeClient(value)) return AnyRecord(*record);
      return std::nullopt;
    case Table::kTraps:
      if (auto record = policy::DecodeTrap(value)) return AnyRecord(*record);
      return std::nullopt;
    case Table::kReplies:
      if (auto record = policy::DecodeReply(value)) return AnyRecord(*record);
      return std::nullopt;
  }
  return std::nullopt;
}

std::string EncodeRecord(const AnyRecord& record) {
  return std::visit(
      [](const auto& r) {
        using Record = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<Record, policy::TripletRecord>) {
          return policy::EncodeTriplet(r);
        } else if constexpr (std::is_same_v<Record, policy::ClientRecord>) {
          return policy::EncodeClient(r);
        } else if constexpr (std::is_same_v<Record, policy::TrapRecord>) {
          return policy::EncodeTrap(r);
        } else {
          return policy::EncodeReply(r);
        }
      },
      record);
}

UnixTime ExpiresAt(const AnyRecord& record, const policy::GreylistTiming& timing) {
  return std::visit(
      [&](const auto& r) {
        if constexpr (std::is_same_v<std::decay_t<decltype(r)>, policy::TrapRecord>) {
          return policy::ExpiresAt(r);
        } else {
          return policy::ExpiresAt(r, timing);
        }
      },
      record);
}

bool Expired(const AnyRecord& record, UnixTime now, const policy::GreylistTiming& timing) {
  return std::visit(
      [&](const auto& r) {
        if constexpr (std::is_same_v<std::decay_t<decltype(r)>, policy::TrapRecord>) {
          return policy::Expired(r, now);
        } else {
          return policy::Expired(r, now, timing);
        }
      },
      record);
}

void WarnCorrupt(Table table, std::string_view key, std::string_view value) {
  log::Warning("ignoring corrupt {} record {}: '{}'", TableName(table), log::Escaped(key),
               log::Escaped(value.substr(0, 64)));
}

policy::ReplyRecord RecordedReply(std::string_view key, std::optional<std::string_view> value,
                                  UnixTime now, const policy::GreylistTiming& timing) {
  return policy::RecordOutbound(
      policy::Live(DecodeOrWarn<policy::ReplyRecord>(Table::kReplies, key, value), now, timing),
      now);
}

bool ShouldExpire(Table table, std::string_view value, UnixTime now,
                  const policy::GreylistTiming& timing) {
  std::optional<AnyRecord> record = DecodeRecord(table, value);
  return !record || Expired(*record, now, timing);
}

}  // namespace greylight::store
