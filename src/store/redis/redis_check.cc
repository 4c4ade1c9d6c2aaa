#include "store/redis/redis_check.h"

#include <fmt/format.h>

#include "store/record_access.h"
#include "store/redis/redis_scripts.h"
#include "util/log.h"

namespace greylight::store {
namespace {

std::string Seconds(UnixTime t) { return std::to_string(ToUnixSeconds(t)); }

std::optional<std::string_view> ReplyValue(const RedisReply& reply) {
  if (reply.type != RedisReply::Type::kString) return std::nullopt;
  return std::string_view(reply.str);
}

// Where each table's prior and written values sit in the script's reply (the reply record
// is only read: no written value).
constexpr size_t kReplySize = 7;
constexpr size_t kNoIndex = kReplySize;
size_t PriorIndex(Table table) {
  switch (table) {
    case Table::kTriplets:
      return 0;
    case Table::kClients:
      return 1;
    case Table::kTraps:
      return 4;
    case Table::kReplies:
      return 6;
  }
  return kNoIndex;
}
size_t WrittenIndex(Table table) {
  switch (table) {
    case Table::kTriplets:
      return 2;
    case Table::kClients:
      return 3;
    case Table::kTraps:
      return 5;
    case Table::kReplies:
      return kNoIndex;
  }
  return kNoIndex;
}

// The reply argument of the check script: "0" no reply record to consider, "1" the script
// reads keys.reply, "2" the caller read a live one elsewhere.
std::string ReplyMode(const CheckKeys& keys, UnixTime now, const policy::GreylistTiming& timing,
                      const std::optional<RawValue>& reply_elsewhere) {
  if (keys.reply.empty()) return "0";
  if (!reply_elsewhere) return "1";
  std::optional<policy::ReplyRecord> live =
      *reply_elsewhere ? policy::Live(policy::DecodeReply(**reply_elsewhere), now, timing)
                       : std::nullopt;
  return live ? "2" : "0";
}

}  // namespace

RedisCommand BuildCheckCommand(const CheckKeys& keys, UnixTime now,
                               const policy::GreylistTiming& timing, const RedisKeyLayout& layout,
                               const std::optional<RawValue>& reply_elsewhere) {
  const bool has_client = !keys.client.empty();
  const bool has_trap = !keys.trap.empty();
  std::string reply_mode = ReplyMode(keys, now, timing, reply_elsewhere);
  const bool reads_reply = reply_mode == "1";
  // A record last seen before `live_since` is not policy::Live; a pending one first seen
  // before `abandoned_before` is policy::Abandoned.
  const UnixTime live_since = now - timing.max_age;
  const UnixTime abandoned_before = now - timing.retry_window;
  const UnixTime pending_expires_at = policy::ExpiresAt(policy::TripletRecord{now, now}, timing);
  const UnixTime passed_expires_at =
      policy::ExpiresAt(policy::TripletRecord{now - timing.delay, now}, timing);
  const UnixTime client_expires_at = policy::ExpiresAt(policy::ClientRecord{0, now}, timing);

  RedisCommand command;
  command.reserve(21);
  command.push_back("EVALSHA");
  command.push_back(CheckScript().sha1);
  command.push_back(std::to_string(1 + int{has_client} + int{has_trap} + int{reads_reply}));
  command.push_back(layout.Key(Table::kTriplets, keys.triplet));
  if (has_client) command.push_back(layout.Key(Table::kClients, keys.client));
  if (has_trap) command.push_back(layout.Key(Table::kTraps, keys.trap));
  if (reads_reply) command.push_back(layout.Key(Table::kReplies, keys.reply));
  command.push_back(Seconds(now));
  command.push_back(std::to_string(timing.delay.count()));
  command.push_back(Seconds(live_since));
  command.push_back(Seconds(abandoned_before));
  command.push_back(std::to_string(timing.awl_threshold));
  command.push_back(Seconds(now - policy::GreylistTiming::kAwlCountInterval));
  command.push_back(Seconds(now + timing.trap_ttl));
  command.push_back(Seconds(pending_expires_at));
  command.push_back(Seconds(passed_expires_at));
  command.push_back(Seconds(client_expires_at));
  command.push_back(std::to_string(policy::kMaxRecordField));
  command.push_back(has_client ? "1" : "0");
  command.push_back(!has_trap ? "0" : keys.trap_hit ? "2" : "1");
  command.push_back(Seconds(now - policy::GreylistTiming::kLastSeenRefresh));
  command.push_back(std::move(reply_mode));
  return command;
}

Result<policy::Transition> TransitionFromReply(const CheckKeys& keys, UnixTime now,
                                               const policy::GreylistTiming& timing,
                                               const RedisReply& reply,
                                               const std::optional<RawValue>& reply_elsewhere) {
  if (reply.is_error()) return Status::Unavailable("redis: " + reply.str);
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != kReplySize) {
    return Status::Corruption("redis: unexpected reply to the check script");
  }
  auto read = [&](Table table, const std::string&) -> std::optional<std::string_view> {
    if (table == Table::kReplies && reply_elsewhere) {
      if (!*reply_elsewhere) return std::nullopt;
      return std::string_view(**reply_elsewhere);
    }
    return ReplyValue(reply.elements[PriorIndex(table)]);
  };
  policy::PriorState prior = ReadPrior(keys, now, timing, read);
  policy::Transition transition = DecideFor(keys, prior, now, timing);
  std::array<std::optional<std::string>, kAllTables.size()> want;
  ApplyTransition(keys, transition, [&](Table table, const std::string&, std::string value) {
    want[TableIndex(table)] = std::move(value);
  });
  for (Table table : kAllTables) {
    if (WrittenIndex(table) == kNoIndex) continue;
    auto got = ReplyValue(reply.elements[WrittenIndex(table)]);
    const std::optional<std::string>& wanted = want[TableIndex(table)];
    if (wanted != got) {
      std::string message = fmt::format(
          "redis: the check script and policy::Decide disagree on the {} record of triplet "
          "{}: script wrote '{}', Decide wants '{}'",
          TableName(table), log::Escaped(keys.triplet), got.value_or("-"), wanted.value_or("-"));
      log::Error("{}", message);
      return Status::Corruption(std::move(message));
    }
  }
  return transition;
}

RedisCommand BuildRecordReplyCommand(std::string_view key, UnixTime now,
                                     const policy::GreylistTiming& timing,
                                     const RedisKeyLayout& layout) {
  // A record last sent before `live_since` is not policy::Live; the one written lives until
  // its policy::ExpiresAt.
  const UnixTime live_since = now - timing.max_age;
  const UnixTime expires_at = policy::ExpiresAt(policy::ReplyRecord{1, now}, timing);
  return {"EVALSHA",
          RecordReplyScript().sha1,
          "1",
          layout.Key(Table::kReplies, key),
          Seconds(now),
          Seconds(live_since),
          Seconds(expires_at),
          std::to_string(policy::kMaxRecordField)};
}

Result<policy::ReplyRecord> ReplyRecordFromReply(std::string_view key, UnixTime now,
                                                 const policy::GreylistTiming& timing,
                                                 const RedisReply& reply) {
  if (reply.is_error()) return Status::Unavailable("redis: " + reply.str);
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 2) {
    return Status::Corruption("redis: unexpected reply to the reply-record script");
  }
  policy::ReplyRecord want = RecordedReply(key, ReplyValue(reply.elements[0]), now, timing);
  std::optional<std::string_view> got = ReplyValue(reply.elements[1]);
  if (got != std::optional<std::string_view>(policy::EncodeReply(want))) {
    std::string message = fmt::format(
        "redis: the reply-record script and policy::RecordOutbound disagree on {}: script "
        "wrote '{}', RecordOutbound wants '{}'",
        log::Escaped(key), got.value_or("-"), policy::EncodeReply(want));
    log::Error("{}", message);
    return Status::Corruption(std::move(message));
  }
  return want;
}

}  // namespace greylight::store
