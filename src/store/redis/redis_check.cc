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

// Where each table's prior and written values sit in the script's reply.
constexpr size_t kReplySize = 6;
size_t PriorIndex(Table table) {
  return table == Table::kTriplets ? 0 : table == Table::kClients ? 1 : 4;
}
size_t WrittenIndex(Table table) {
  return table == Table::kTriplets ? 2 : table == Table::kClients ? 3 : 5;
}

}  // namespace

RedisCommand BuildCheckCommand(const CheckKeys& keys, UnixTime now,
                               const policy::GreylistTiming& timing, const RedisKeyLayout& layout) {
  const bool has_client = !keys.client.empty();
  const bool has_trap = !keys.trap.empty();
  // A record last seen before `live_since` is not policy::Live; a pending one first seen
  // before `abandoned_before` is policy::Abandoned.
  const UnixTime live_since = now - timing.max_age;
  const UnixTime abandoned_before = now - timing.retry_window;
  const UnixTime pending_expires_at = policy::ExpiresAt(policy::TripletRecord{now, now}, timing);
  const UnixTime passed_expires_at =
      policy::ExpiresAt(policy::TripletRecord{now - timing.delay, now}, timing);
  const UnixTime client_expires_at = policy::ExpiresAt(policy::ClientRecord{0, now}, timing);

  RedisCommand command;
  command.reserve(20);
  command.push_back("EVALSHA");
  command.push_back(CheckScript().sha1);
  command.push_back(std::to_string(1 + int{has_client} + int{has_trap}));
  command.push_back(layout.Key(Table::kTriplets, keys.triplet));
  if (has_client) command.push_back(layout.Key(Table::kClients, keys.client));
  if (has_trap) command.push_back(layout.Key(Table::kTraps, keys.trap));
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
  return command;
}

Result<policy::Transition> TransitionFromReply(const CheckKeys& keys, UnixTime now,
                                               const policy::GreylistTiming& timing,
                                               const RedisReply& reply) {
  if (reply.is_error()) return Status::Unavailable("redis: " + reply.str);
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != kReplySize) {
    return Status::Corruption("redis: unexpected reply to the check script");
  }
  auto read = [&](Table table, const std::string&) {
    return ReplyValue(reply.elements[PriorIndex(table)]);
  };
  policy::PriorState prior = ReadPrior(keys, now, timing, read);
  policy::Transition transition = DecideFor(keys, prior, now, timing);
  std::array<std::optional<std::string>, kAllTables.size()> want;
  ApplyTransition(keys, transition, [&](Table table, const std::string&, std::string value) {
    want[TableIndex(table)] = std::move(value);
  });
  for (Table table : kAllTables) {
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

}  // namespace greylight::store
