#pragma once

#include <asio.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/decision_log.h"
#include "engine/greylister.h"
#include "policy/ip_address.h"
#include "protocol/request_parser.h"
#include "server/daemon_metrics.h"
#include "server/listen_address.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/status.h"

namespace greylight::server {

struct ServerOptions {
  static constexpr std::chrono::seconds kDefaultIdleTimeout{3600};
  static constexpr std::chrono::seconds kDefaultRequestTimeout{60};
  static constexpr size_t kDefaultMaxConnections = 4000;
  static constexpr size_t kDefaultMaxConnectionsPerPeer = 1000;
  static constexpr std::chrono::seconds kDefaultShutdownGrace{10};
  static constexpr int kDefaultListenBacklog = 1024;
  static constexpr unsigned kDefaultSocketMode = 0666;

  std::vector<ListenAddress> listen;
  protocol::ParserLimits parser_limits;
  // Longer than Postfix's smtpd_policy_service_max_idle (300 s), so Postfix, not we,
  // closes idle connections in normal operation.
  std::chrono::seconds idle_timeout = kDefaultIdleTimeout;
  // A request that has started must be complete within this time: a peer that trickles
  // bytes cannot hold a connection and its buffer forever.
  std::chrono::seconds request_timeout = kDefaultRequestTimeout;
  size_t max_connections = kDefaultMaxConnections;
  // Per remote TCP peer address. Loopback and UNIX-socket peers (a local Postfix's smtpd
  // processes) count against max_connections only.
  size_t max_connections_per_peer = kDefaultMaxConnectionsPerPeer;
  std::vector<policy::Network> allow_from;  // TCP peers allowed to connect; empty allows all
  // After SIGTERM: how long connections may take to answer what they already received.
  std::chrono::seconds shutdown_grace = kDefaultShutdownGrace;
  int listen_backlog = kDefaultListenBacklog;
  unsigned socket_mode = kDefaultSocketMode;                    // chmod of UNIX sockets after bind
  bool close_after_reply = false;                               // postgrey --exim
  engine::LogFormat log_format = engine::LogFormat::kPostgrey;  // --log-format
};

class Connection;

// The network side of greylightd: listeners, connections and the policy protocol over
// them. It only moves bytes: parsing is protocol::RequestParser's, deciding the engine's.
// All handlers run on the io_context, which one thread runs: connections use its executor
// directly, without a strand's lock and a type-erased executor per handler (about a tenth
// of a pass request's user CPU, issue 15). More cores would take one io_context per thread,
// as the bench's null server does.
class Server {
 public:
  Server(asio::io_context& io, ServerOptions options, const Clock& clock);
  ~Server();

  // Binds every listener. Returns the first failure (nothing is left bound then).
  Status Bind();
  // Starts accepting; requests are decided by `greylister` (Decide, or RecordOutbound on an
  // outbound listener), which must outlive the server. REQUIRES: Bind() succeeded.
  void Start(const engine::Greylister& greylister);
  // Stops accepting; open connections answer what they have received, then close.
  // Connections still busy after the grace period are closed.
  void Shutdown();
  // The bound TCP ports, in listen order (resolves port 0 for tests).
  std::vector<unsigned short> bound_ports() const;
  size_t connection_count() const;
  // Closes the connections idle longer than the idle timeout and those whose started
  // request is older than the request timeout, by the clock's monotonic time. The server
  // calls it every kSweepInterval; tests call it after moving a fake clock. Returns false
  // once the server is shutting down.
  bool ExpireConnections();
  DaemonMetrics& metrics() { return metrics_; }

 private:
  friend class Connection;
  struct Listener;
  // Connection idle and request timeouts are checked this often.
  static constexpr std::chrono::milliseconds kSweepInterval{500};
  void Accept(Listener& listener);
  void Sweep();
  void Forget(Connection* connection);
  // Decides whether a new TCP/UNIX connection may be served; logs the refusal if not.
  // `peer_ip` is set for TCP peers, `limited_peer` for those the per-peer limit applies to.
  bool Admit(const std::optional<policy::IpAddress>& peer_ip,
             const std::optional<policy::IpAddress>& limited_peer, const std::string& peer);

  asio::io_context& io_;
  const ServerOptions options_;
  const engine::Greylister* greylister_ = nullptr;
  const Clock& clock_;
  DaemonMetrics metrics_;
  engine::HeaderTracker shared_headers_;  // --exim: one connection per request
  static constexpr std::chrono::seconds kDependencyErrorLogInterval{10};
  log::RateLimiter dependency_error_log_{kDependencyErrorLogInterval};
  std::vector<std::unique_ptr<Listener>> listeners_;
  mutable std::mutex connections_mutex_;
  std::set<std::shared_ptr<Connection>> connections_;
  std::map<policy::IpAddress, size_t> connections_per_peer_;  // guarded by connections_mutex_
  bool shutting_down_ = false;                                // guarded by connections_mutex_
  asio::steady_timer shutdown_timer_;
  asio::steady_timer sweep_timer_;
};

}  // namespace greylight::server
