#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/clock.h"

namespace greylight::policy {

// A triplet as postgrey stores it: value "<first>,<last>" in Unix seconds.
struct TripletRecord {
  UnixTime first;  // first sighting of the current attempt
  UnixTime last;   // last request for the triplet
  friend bool operator==(const TripletRecord&, const TripletRecord&) = default;
};

// A client auto-whitelist entry: value "<count>,<last>".
struct ClientRecord {
  long long count = 0;  // successful first deliveries, counted at most once per hour
  UnixTime last;        // last time the count or the pass was recorded
  friend bool operator==(const ClientRecord&, const ClientRecord&) = default;
};

// A greytrap-list entry (not in postgrey): value "<until>,<last_hit>". The client is
// trapped while now < until.
struct TrapRecord {
  UnixTime until;
  UnixTime last_hit;  // the last request to a trap address
  friend bool operator==(const TrapRecord&, const TrapRecord&) = default;
};

// A reply-tracking entry (not in postgrey): value "<count>,<last>". A local user wrote to a
// remote address `count` times (counted while the entry lived), the last time at `last`;
// mail from that address to that user is a reply and passes without greylisting.
struct ReplyRecord {
  long long count = 0;
  UnixTime last;
  friend bool operator==(const ReplyRecord&, const ReplyRecord&) = default;
};

// The largest field value a record may hold: 2^53 - 1, the largest integer every backend
// represents exactly (Redis' Lua numbers are doubles). A larger field makes the value
// malformed everywhere alike, and keeps `last + an hour` far from overflow.
inline constexpr long long kMaxRecordField = (1LL << 53) - 1;

// The codec for postgrey's value formats. Decoding tolerates the optional third field of
// old postgrey triplet values; anything else malformed (including a field above
// kMaxRecordField) yields nullopt.
std::string EncodeTriplet(const TripletRecord& record);
std::optional<TripletRecord> DecodeTriplet(std::string_view value);
std::string EncodeClient(const ClientRecord& record);
std::optional<ClientRecord> DecodeClient(std::string_view value);
std::string EncodeTrap(const TrapRecord& record);
std::optional<TrapRecord> DecodeTrap(std::string_view value);
std::string EncodeReply(const ReplyRecord& record);
std::optional<ReplyRecord> DecodeReply(std::string_view value);

}  // namespace greylight::policy
