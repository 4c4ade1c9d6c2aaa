#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <string>

#include "engine/decision.h"
#include "policy/reason.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/metrics.h"

namespace greylight::server {

// greylightd's Prometheus metrics. Recording is lock-free and safe from any thread.
class DaemonMetrics {
 public:
  // `clock` (for the uptime) must outlive the metrics.
  explicit DaemonMetrics(const Clock& clock);

  void RecordDecision(const engine::Decision& decision, std::chrono::nanoseconds took);
  void ConnectionOpened() { open_connections_.Add(1); }
  void ConnectionClosed() { open_connections_.Add(-1); }
  void ConnectionRefused() { refused_connections_.Add(); }
  void ProtocolError() { protocol_errors_.Add(); }
  // The outcome of loading the whitelists (at start or on SIGHUP).
  void WhitelistsLoaded(bool ok, size_t client_entries, size_t recipient_entries, UnixTime when);

  // The exposition text; `store` supplies record counts at scrape time.
  std::string Render(const store::StoreStats& store) const;

  // One line of counters since the previous call, for the periodic summary log.
  std::string Summary();

 private:
  const Clock& clock_;
  const MonoTime started_;
  std::array<metrics::Counter, policy::kReasonCount> requests_;  // by reason
  metrics::Histogram decision_seconds_;
  metrics::Histogram retry_delay_seconds_;
  metrics::Counter clients_auto_whitelisted_;
  metrics::Counter greytrap_hits_;
  metrics::Counter reply_passes_;      // inbound requests passed as replies
  metrics::Counter replies_recorded_;  // outbound requests whose pair was recorded
  metrics::Gauge open_connections_;
  metrics::Counter refused_connections_;
  metrics::Counter protocol_errors_;
  metrics::Gauge whitelist_clients_;
  metrics::Gauge whitelist_recipients_;
  metrics::Gauge whitelist_reload_time_;
  metrics::Gauge whitelist_reload_ok_;
  metrics::Counter whitelist_reload_failures_;
  std::array<uint64_t, policy::kReasonCount> summarized_{};  // counts at the last Summary()
  // --spf-keys: the SPF results of decided requests, by spf::SpfCode, and broad passes
  // (which do not key the client) apart in the last slot.
  static constexpr size_t kSpfOutcomes = 8;
  std::array<metrics::Counter, kSpfOutcomes> spf_checks_;
};

}  // namespace greylight::server
