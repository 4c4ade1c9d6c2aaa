#include "server/daemon_metrics.h"

#include <fmt/format.h>

#include <map>

namespace greylight::server {
namespace {

constexpr size_t kBroadPassSlot = 7;
static_assert(static_cast<size_t>(spf::SpfCode::kPermError) < kBroadPassSlot);

size_t SpfSlot(const spf::SpfResult& result) {
  if (result.code == spf::SpfCode::kPass && result.broad) return kBroadPassSlot;
  return static_cast<size_t>(result.code);
}

std::string SpfSlotName(size_t slot) {
  if (slot == kBroadPassSlot) return "pass_broad";
  return std::string(spf::SpfCodeName(static_cast<spf::SpfCode>(slot)));
}

}  // namespace

DaemonMetrics::DaemonMetrics(const Clock& clock)
    : clock_(clock),
      started_(clock.Monotonic()),
      decision_seconds_({0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                         0.01, 0.025, 0.05, 0.1, 0.25, 1}),
      // How long senders take to come back: from the delay to days.
      retry_delay_seconds_({60, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800}) {}

void DaemonMetrics::RecordDecision(const engine::Decision& decision,
                                   std::chrono::nanoseconds took) {
  requests_[static_cast<size_t>(decision.reason)].Add();
  decision_seconds_.Observe(std::chrono::duration<double>(took).count());
  if (decision.reason == policy::Reason::kPassFirst) {
    retry_delay_seconds_.Observe(static_cast<double>(decision.delayed.count()));
  }
  if (decision.client_whitelisted) clients_auto_whitelisted_.Add();
  if (decision.spf) spf_checks_[SpfSlot(*decision.spf)].Add();
  // A hit the store recorded: the trap list now holds the client.
  if (decision.trap_hit && decision.reason == policy::Reason::kGreytrap) greytrap_hits_.Add();
  if (decision.reason == policy::Reason::kReply) reply_passes_.Add();
  if (decision.reason == policy::Reason::kOutbound) replies_recorded_.Add();
}

void DaemonMetrics::WhitelistsLoaded(bool ok, size_t client_entries, size_t recipient_entries,
                                     UnixTime when) {
  whitelist_reload_ok_.Set(ok ? 1 : 0);
  whitelist_reload_time_.Set(static_cast<double>(ToUnixSeconds(when)));
  if (ok) {
    whitelist_clients_.Set(static_cast<double>(client_entries));
    whitelist_recipients_.Set(static_cast<double>(recipient_entries));
  } else {
    whitelist_reload_failures_.Add();
  }
}

std::string DaemonMetrics::Summary() {
  uint64_t total = 0, greylisted = 0, passed = 0, whitelisted = 0, awl = 0, replies = 0, errors = 0,
           outbound = 0;
  for (size_t i = 0; i < policy::kReasonCount; ++i) {
    uint64_t now = requests_[i].value();
    uint64_t delta = now - summarized_[i];
    summarized_[i] = now;
    total += delta;
    auto reason = static_cast<policy::Reason>(i);
    switch (policy::VerdictOf(reason)) {
      case policy::Verdict::kGreylist:
        greylisted += delta;
        break;
      case policy::Verdict::kPass:
        if (reason == policy::Reason::kPassFirst || reason == policy::Reason::kPassed) {
          passed += delta;
        } else if (reason == policy::Reason::kClientAwl) {
          awl += delta;
        } else if (reason == policy::Reason::kReply) {
          replies += delta;
        } else {
          whitelisted += delta;
        }
        break;
      case policy::Verdict::kUndecided:
        errors += delta;
        break;
      case policy::Verdict::kOutbound:
        outbound += delta;
        break;
    }
  }
  return fmt::format(
      "summary: requests={}, greylisted={}, passed={}, whitelisted={}, awl={}, replies={}, "
      "unanswerable={}, outbound={}, connections={}",
      total, greylisted, passed, whitelisted, awl, replies, errors, outbound,
      open_connections_.value());
}

std::string DaemonMetrics::Render(const store::StoreStats& store) const {
  using metrics::RenderHeader;
  using metrics::RenderSample;
  std::string out;
  out.reserve(8192);
  RenderHeader(out, "greylight_requests_total", "counter",
               "Policy requests answered, by action and reason.");
  // Several reasons share postgrey's words (a first pass and a later one are both
  // "triplet found"): one series per (action, reason).
  std::map<std::pair<std::string_view, std::string_view>, uint64_t> by_words;
  for (size_t i = 0; i < policy::kReasonCount; ++i) {
    auto reason = static_cast<policy::Reason>(i);
    by_words[{policy::ActionWord(reason), policy::ReasonWord(reason)}] += requests_[i].value();
  }
  for (const auto& [words, count] : by_words) {
    RenderSample(out, "greylight_requests_total",
                 fmt::format("action=\"{}\",reason=\"{}\"", words.first, words.second),
                 static_cast<double>(count));
  }
  RenderHeader(out, "greylight_decision_seconds", "histogram",
               "Time from a complete request to its decision.");
  decision_seconds_.Render(out, "greylight_decision_seconds");
  RenderHeader(out, "greylight_retry_delay_seconds", "histogram",
               "Delay between first attempt and first accepted delivery of triplets that "
               "passed.");
  retry_delay_seconds_.Render(out, "greylight_retry_delay_seconds");
  RenderHeader(out, "greylight_clients_auto_whitelisted_total", "counter",
               "Clients that reached the auto-whitelist threshold.");
  RenderSample(out, "greylight_clients_auto_whitelisted_total", "",
               static_cast<double>(clients_auto_whitelisted_.value()));
  RenderHeader(out, "greylight_store_errors_total", "counter",
               "Requests answered with --store-error-action because the store failed.");
  RenderSample(
      out, "greylight_store_errors_total", "",
      static_cast<double>(requests_[static_cast<size_t>(policy::Reason::kStoreError)].value()));
  RenderHeader(out, "greylight_greytrap_hits_total", "counter",
               "Requests to a greytrap address (each puts or keeps its client on the trap list).");
  RenderSample(out, "greylight_greytrap_hits_total", "",
               static_cast<double>(greytrap_hits_.value()));
  RenderHeader(out, "greylight_spf_checks_total", "counter",
               "SPF results of requests checked for --spf-keys; result=\"pass\" keyed the "
               "client by its domain, pass_broad (all, exists, ptr, wide ranges) did not.");
  for (size_t slot = 0; slot < kSpfOutcomes; ++slot) {
    RenderSample(out, "greylight_spf_checks_total", fmt::format("result=\"{}\"", SpfSlotName(slot)),
                 static_cast<double>(spf_checks_[slot].value()));
  }
  RenderHeader(out, "greylight_reply_passes_total", "counter",
               "Inbound requests passed without greylisting as replies to a local user's "
               "earlier message (reason reply).");
  RenderSample(out, "greylight_reply_passes_total", "", static_cast<double>(reply_passes_.value()));
  RenderHeader(out, "greylight_replies_recorded_total", "counter",
               "Outbound listener requests whose (recipient, sender) pair was recorded.");
  RenderSample(out, "greylight_replies_recorded_total", "",
               static_cast<double>(replies_recorded_.value()));
  if (store.triplets) {
    RenderHeader(out, "greylight_triplets_stored", "gauge", "Triplet records in the store.");
    RenderSample(out, "greylight_triplets_stored", "", static_cast<double>(*store.triplets));
  }
  if (store.clients) {
    RenderHeader(out, "greylight_clients_stored", "gauge",
                 "Client auto-whitelist records in the store.");
    RenderSample(out, "greylight_clients_stored", "", static_cast<double>(*store.clients));
  }
  if (store.traps) {
    RenderHeader(
        out, "greylight_traps_stored", "gauge",
        "Greytrap-list records in the store (expired ones until the expiry removes them).");
    RenderSample(out, "greylight_traps_stored", "", static_cast<double>(*store.traps));
  }
  if (store.replies) {
    RenderHeader(out, "greylight_replies_stored", "gauge",
                 "Reply records in the store (expired ones until the expiry removes them).");
    RenderSample(out, "greylight_replies_stored", "", static_cast<double>(*store.replies));
  }
  RenderHeader(out, "greylight_expired_records_total", "counter",
               "Records removed by the background expiry.");
  RenderSample(out, "greylight_expired_records_total", "",
               static_cast<double>(store.expired_total));
  RenderHeader(out, "greylight_open_connections", "gauge", "Open policy connections.");
  RenderSample(out, "greylight_open_connections", "", open_connections_.value());
  RenderHeader(out, "greylight_refused_connections_total", "counter",
               "Connections refused by --allow-from or the connection limits.");
  RenderSample(out, "greylight_refused_connections_total", "",
               static_cast<double>(refused_connections_.value()));
  RenderHeader(out, "greylight_protocol_errors_total", "counter",
               "Connections closed for malformed or oversized input.");
  RenderSample(out, "greylight_protocol_errors_total", "",
               static_cast<double>(protocol_errors_.value()));
  RenderHeader(out, "greylight_whitelist_entries", "gauge", "Entries in the loaded whitelists.");
  RenderSample(out, "greylight_whitelist_entries", "list=\"clients\"", whitelist_clients_.value());
  RenderSample(out, "greylight_whitelist_entries", "list=\"recipients\"",
               whitelist_recipients_.value());
  RenderHeader(out, "greylight_whitelist_last_reload_timestamp_seconds", "gauge",
               "Unix time of the last whitelist (re)load attempt.");
  RenderSample(out, "greylight_whitelist_last_reload_timestamp_seconds", "",
               whitelist_reload_time_.value());
  RenderHeader(out, "greylight_whitelist_last_reload_success", "gauge",
               "1 if the last whitelist (re)load succeeded, 0 if the previous lists were kept.");
  RenderSample(out, "greylight_whitelist_last_reload_success", "", whitelist_reload_ok_.value());
  RenderHeader(out, "greylight_whitelist_reload_failures_total", "counter",
               "Whitelist reloads rejected because a file had an error.");
  RenderSample(out, "greylight_whitelist_reload_failures_total", "",
               static_cast<double>(whitelist_reload_failures_.value()));
  RenderHeader(out, "greylight_uptime_seconds", "gauge", "Seconds since greylightd started.");
  RenderSample(out, "greylight_uptime_seconds", "",
               std::chrono::duration<double>(clock_.Monotonic() - started_).count());
  return out;
}

}  // namespace greylight::server
