// `greylight stats`.
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <optional>
#include <ostream>

#include "policy/greylist_state.h"
#include "policy/records.h"
#include "policy/triplet_key.h"
#include "tools/command.h"
#include "tools/output_format.h"
#include "tools/record_filter.h"
#include "tools/tool_store.h"

namespace greylight::tools {
namespace {

using cli::OptionSpec;
using cli::ParsedOptions;
using Arity = OptionSpec::Arity;

constexpr OptionSpec kStatsOptions[] = {
    {"--format", Arity::kValue, "text|json", "text", "output format", "greylight"},
    kAtOption,
};

struct AgeBuckets {
  static constexpr std::array<std::pair<std::string_view, long long>, 4> kLimits = {
      {{"<1h", 3600}, {"<1d", 86400}, {"<7d", 7 * 86400}, {"<35d", 35 * 86400}}};
  std::array<uint64_t, kLimits.size() + 1> counts{};

  void Add(Seconds age) {
    size_t i = 0;
    while (i < kLimits.size() && age.count() >= kLimits[i].second) ++i;
    ++counts[i];
  }
};

int RunStats(const ParsedOptions& o, Context& c) {
  auto format = ParseOutputFormat(o.LastOrDefault("format"), false);
  if (!format.ok()) return c.Fail(kExitConfig, format.status().message());
  auto now_or = TimeOption(o, c);
  if (!now_or.ok()) return c.Fail(kExitConfig, now_or.status().message());
  const UnixTime now = *now_or;
  auto store = OpenToolStore(c.store_uri, c.config, c.env.clock);
  if (!store.ok()) return c.StoreFailure(store.status());

  const policy::GreylistTiming& timing = c.config.timing;
  uint64_t pending = 0, passed = 0, triplets_expired = 0, triplets_malformed = 0;
  AgeBuckets ages;
  Status walked =
      (*store)->ForEach(store::Table::kTriplets, [&](std::string_view, std::string_view value) {
        std::optional<policy::TripletRecord> record = policy::DecodeTriplet(value);
        if (!record) {
          ++triplets_malformed;
          return true;
        }
        ++(StateOf(*record, timing) == TripletState::kPassed ? passed : pending);
        if (policy::Expired(*record, now, timing)) ++triplets_expired;
        ages.Add(now - record->last);
        return true;
      });
  if (!walked.ok()) return c.StoreFailure(walked);
  uint64_t whitelisted = 0, below = 0, clients_expired = 0, clients_malformed = 0;
  walked = (*store)->ForEach(store::Table::kClients, [&](std::string_view, std::string_view value) {
    std::optional<policy::ClientRecord> record = policy::DecodeClient(value);
    if (!record) {
      ++clients_malformed;
      return true;
    }
    const bool listed = policy::AutoWhitelisted(*record, timing);
    ++(listed ? whitelisted : below);
    if (policy::Expired(*record, now, timing)) ++clients_expired;
    return true;
  });
  if (!walked.ok()) return c.StoreFailure(walked);
  uint64_t trapping = 0, traps_expired = 0, traps_malformed = 0;
  walked = (*store)->ForEach(store::Table::kTraps, [&](std::string_view, std::string_view value) {
    std::optional<policy::TrapRecord> record = policy::DecodeTrap(value);
    if (!record) {
      ++traps_malformed;
      return true;
    }
    ++(policy::Expired(*record, now) ? traps_expired : trapping);
    return true;
  });
  if (!walked.ok()) return c.StoreFailure(walked);
  uint64_t replies_live = 0, replies_expired = 0, replies_malformed = 0;
  walked = (*store)->ForEach(store::Table::kReplies, [&](std::string_view, std::string_view value) {
    std::optional<policy::ReplyRecord> record = policy::DecodeReply(value);
    if (!record) {
      ++replies_malformed;
      return true;
    }
    ++(policy::Expired(*record, now, timing) ? replies_expired : replies_live);
    return true;
  });
  if (!walked.ok()) return c.StoreFailure(walked);

  const uint64_t triplets = pending + passed + triplets_malformed;
  const uint64_t clients = whitelisted + below + clients_malformed;
  const uint64_t traps = trapping + traps_expired + traps_malformed;
  const uint64_t replies = replies_live + replies_expired + replies_malformed;
  std::string out;
  if (*format == OutputFormat::kJson) {
    out = fmt::format(
        "{{\"at\":{},\"triplets\":{{\"total\":{},\"pending\":{},\"passed\":{},\"expired\":{},"
        "\"malformed\":{},\"age_by_last_seen\":{{\"lt_1h\":{},\"lt_1d\":{},\"lt_7d\":{},"
        "\"lt_35d\":{},\"older\":{}}}}},\"clients\":{{\"total\":{},\"auto_whitelisted\":{},"
        "\"below_threshold\":{},\"expired\":{},\"malformed\":{},\"threshold\":{}}},"
        "\"traps\":{{\"total\":{},\"trapping\":{},\"expired\":{},\"malformed\":{}}},"
        "\"replies\":{{\"total\":{},\"live\":{},\"expired\":{},\"malformed\":{}}}}}\n",
        ToUnixSeconds(now), triplets, pending, passed, triplets_expired, triplets_malformed,
        ages.counts[0], ages.counts[1], ages.counts[2], ages.counts[3], ages.counts[4], clients,
        whitelisted, below, clients_expired, clients_malformed, timing.awl_threshold, traps,
        trapping, traps_expired, traps_malformed, replies, replies_live, replies_expired,
        replies_malformed);
  } else {
    out += fmt::format("at: {}\n", FormatTime(now));
    out += fmt::format("triplets: {}\n", triplets);
    out += fmt::format("  pending: {}\n", pending);
    out += fmt::format("  passed: {}\n", passed);
    out += fmt::format("  expired, awaiting removal: {}\n", triplets_expired);
    out += fmt::format("  malformed: {}\n", triplets_malformed);
    out += "  by last seen:";
    for (size_t i = 0; i < AgeBuckets::kLimits.size(); ++i) {
      out += fmt::format(" {} {},", AgeBuckets::kLimits[i].first, ages.counts[i]);
    }
    out += fmt::format(" older {}\n", ages.counts[AgeBuckets::kLimits.size()]);
    out += fmt::format("clients: {}\n", clients);
    out += fmt::format("  auto-whitelisted (count >= {}): {}\n", timing.awl_threshold, whitelisted);
    out += fmt::format("  below threshold: {}\n", below);
    out += fmt::format("  expired, awaiting removal: {}\n", clients_expired);
    out += fmt::format("  malformed: {}\n", clients_malformed);
    out += fmt::format("traps: {}\n", traps);
    out += fmt::format("  trapping now: {}\n", trapping);
    out += fmt::format("  expired, awaiting removal: {}\n", traps_expired);
    out += fmt::format("  malformed: {}\n", traps_malformed);
    out += fmt::format("replies: {}\n", replies);
    out += fmt::format("  live: {}\n", replies_live);
    out += fmt::format("  expired, awaiting removal: {}\n", replies_expired);
    out += fmt::format("  malformed: {}\n", replies_malformed);
  }
  c.env.out << out;
  return kExitOk;
}

}  // namespace

constexpr Command kStatsCommand = {
    "stats",
    "[--format=text|json] [options]",
    "counts of triplets, auto-whitelisted clients, trapped clients and reply records",
    "Counts pending and passed triplets (and those expired, awaiting removal), clients at\n"
    "or above the auto-whitelist threshold and below it, the triplets by last seen: less\n"
    "than 1 hour, 1 day, 7 days, 35 days ago, and older, the greytrap list: clients\n"
    "trapped now and traps that have ended, awaiting removal, and the reply records: live\n"
    "(the remote address' replies pass) and expired, awaiting removal.\n",
    kStatsOptions,
    true,
    RunStats};

}  // namespace greylight::tools
