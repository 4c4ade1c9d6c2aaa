#include "store/redis/redis_scan.h"

#include <fmt/format.h>

namespace greylight::store {

Result<KeyScan::Page> KeyScan::Next(RedisTransport& transport) {
  if (targets_.empty()) {
    auto targets = transport.ScanTargets();
    if (!targets.ok()) return targets.status();
    if (targets->empty()) return Status::Unavailable("redis: no server to scan");
    targets_ = std::move(targets.value());
    target_ = 0;
    cursor_.assign(1, '0');  // not = "0": g++ 12 warns falsely (-Wrestrict) on that
  }
  auto replies =
      CallTarget(transport, targets_[target_],
                 {{"SCAN", cursor_, "MATCH", pattern_, "COUNT", std::to_string(kScanCount)}});
  if (!replies.ok()) return replies.status();
  RedisReply& reply = replies->front();
  if (reply.is_error())
    return Status::IoError(fmt::format("redis {}: {}", targets_[target_], reply.str));
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 2 ||
      reply.elements[1].type != RedisReply::Type::kArray) {
    return Status::IoError("redis: unexpected reply to SCAN");
  }
  Page page;
  cursor_ = std::move(reply.elements[0].str);
  for (RedisReply& key : reply.elements[1].elements) page.keys.push_back(std::move(key.str));
  if (cursor_ == "0" && ++target_ == targets_.size()) {
    targets_.clear();
    page.cycle_done = true;
  }
  return page;
}

Result<std::vector<std::optional<std::string>>> ReadValues(
    RedisTransport& transport, const std::vector<std::string>& redis_keys) {
  std::vector<std::pair<std::string, RedisCommand>> jobs;
  jobs.reserve(redis_keys.size());
  for (const std::string& key : redis_keys) jobs.push_back({key, {"GET", key}});
  auto replies = CallEachKey(transport, std::move(jobs));
  if (!replies.ok()) return replies.status();
  std::vector<std::optional<std::string>> values;
  values.reserve(redis_keys.size());
  for (Result<RedisReply>& reply : *replies) {
    if (!reply.ok()) return reply.status();
    if (reply->IsError("WRONGTYPE")) {
      values.emplace_back();  // not a record
      continue;
    }
    if (reply->is_error()) return Status::IoError("redis: " + reply->str);
    if (reply->type == RedisReply::Type::kString) {
      values.emplace_back(std::move(reply->str));
    } else {
      values.emplace_back();
    }
  }
  return values;
}

}  // namespace greylight::store
