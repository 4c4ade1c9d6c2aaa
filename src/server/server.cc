#include "server/server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <thread>

#include "util/log.h"

namespace greylight::server {

using Protocol = asio::generic::stream_protocol;
// The io_context's own executor, not a type-erased one: one thread runs the io_context, so
// it serialises every connection's handlers without a strand.
using Socket = Protocol::socket::rebind_executor<asio::io_context::executor_type>::other;

namespace {

constexpr size_t kReadChunkBytes = 16 * 1024;

// "[192.0.2.1]:1234", "[::1]:1234" or "unix" for a peer or local endpoint.
std::string DescribeEndpoint(const Protocol::endpoint& endpoint) {
  const sockaddr* address = endpoint.data();
  char text[INET6_ADDRSTRLEN] = "?";
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    return fmt::format("[{}]:{}", text, ntohs(in->sin_port));
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    return fmt::format("[{}]:{}", text, ntohs(in6->sin6_port));
  }
  return "unix";
}

std::optional<policy::IpAddress> PeerAddress(const Protocol::endpoint& endpoint) {
  const sockaddr* address = endpoint.data();
  policy::IpAddress ip;
  if (address->sa_family == AF_INET) {
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, 4);
    return ip;
  }
  if (address->sa_family == AF_INET6) {
    ip.is_v6 = true;
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, 16);
    return ip;
  }
  return std::nullopt;
}

}  // namespace

struct Server::Listener {
  ListenAddress address;
  asio::basic_socket_acceptor<Protocol> acceptor;
};

// One client connection: read bytes, parse requests, decide them in order, write replies.
// Every handler runs on the io_context's one thread; calls from other threads (a store's
// callback, the server's sweep in tests) are dispatched there.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, Socket socket, std::string peer,
             std::optional<policy::IpAddress> limited_peer, ListenAddress::Role role)
      : server_(server),
        socket_(std::move(socket)),
        peer_(std::move(peer)),
        outbound_(role == ListenAddress::Role::kOutbound),
        limited_peer_(limited_peer),
        parser_(server.options_.parser_limits) {}

  void Start() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // Answer what has been received, then close.
  void Stop() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->stopping_ = true;
      // Idle (waiting for bytes, none buffered by the kernel, no partial request): nothing
      // received is left unanswered. Otherwise the pending read delivers the rest first.
      std::error_code ec;
      if (self->reading_ && !self->parser_.in_request() && self->socket_.available(ec) == 0) {
        self->Close();
      }
    });
  }

  // Called by the server's sweep: closes the connection if its deadline has passed.
  void ExpireIfDue(MonoTime now) {
    if (now.time_since_epoch().count() <= deadline_.load(std::memory_order_relaxed)) return;
    asio::dispatch(socket_.get_executor(), [self = shared_from_this(), now] {
      if (self->closed_ || !self->reading_ ||
          now.time_since_epoch().count() <= self->deadline_.load(std::memory_order_relaxed)) {
        return;
      }
      if (self->mid_request_.load(std::memory_order_relaxed)) {
        log::Warning("request from {} not completed within {}s, closing", self->peer_,
                     self->server_.options_.request_timeout.count());
      } else {
        log::Info("closing idle connection from {}", self->peer_);
      }
      self->Close();
    });
  }

  // Close now, whatever is in flight.
  void Abort() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

 private:
  void Read() {
    if (closed_) return;
    std::error_code ec;
    if (stopping_ && !parser_.in_request() && socket_.available(ec) == 0) {
      Close();
      return;
    }
    reading_ = true;
    // The server's sweep enforces both limits from this deadline: idle between requests,
    // and the deadline of a request that has started (a trickling peer is dropped). One
    // coarse sweep instead of a timer per read keeps timer syscalls off the request path.
    const bool mid_request = parser_.in_request();
    auto deadline = mid_request ? request_started_ + server_.options_.request_timeout
                                : server_.clock_.Monotonic() + server_.options_.idle_timeout;
    mid_request_.store(mid_request, std::memory_order_relaxed);
    deadline_.store(deadline.time_since_epoch().count(), std::memory_order_relaxed);
    socket_.async_read_some(
        asio::buffer(read_buffer_), [self = shared_from_this()](std::error_code ec, size_t length) {
          self->reading_ = false;
          self->deadline_.store(kNoDeadline, std::memory_order_relaxed);
          if (ec) {
            if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
              log::Info("read error from {}: {}", self->peer_, ec.message());
            }
            self->Close();
            return;
          }
          self->OnBytes(std::string_view(self->read_buffer_.data(), length));
        });
  }

  void Enqueue(protocol::PolicyRequest&& request) {
    if (spare_requests_.empty()) {
      requests_.push_back(std::move(request));
      return;
    }
    requests_.splice(requests_.end(), spare_requests_, spare_requests_.begin());
    requests_.back() = std::move(request);
  }

  void OnBytes(std::string_view bytes) {
    if (!parser_.in_request()) request_started_ = server_.clock_.Monotonic();
    protocol::ParseError error = parser_.Feed(bytes, parsed_);
    for (protocol::PolicyRequest& request : parsed_) Enqueue(std::move(request));
    parsed_.clear();
    if (error != protocol::ParseError::kNone) {
      server_.metrics_.ProtocolError();
      // "In case of trouble the policy server must not send a reply": warn and disconnect.
      if (error == protocol::ParseError::kUnknownRequestType) {
        log::Error("unrecognized request type: '{}' from {}, closing",
                   log::Escaped(parser_.offending_line()), peer_);
      } else if (error == protocol::ParseError::kMalformedLine) {
        log::Warning("{} from {}: '{}', closing", protocol::Describe(error), peer_,
                     log::Escaped(parser_.offending_line()));
      } else {
        log::Warning("{} from {}, closing", protocol::Describe(error), peer_);
      }
      Close();
      return;
    }
    ProcessRequests();
  }

  void ProcessRequests() {
    while (!requests_.empty() && !deciding_ && !closed_) {
      deciding_ = true;
      decide_started_ = server_.clock_.Monotonic();
      decider_ = std::this_thread::get_id();
      inline_decision_ = true;
      // The pending decision keeps the connection alive (the engine calls back exactly
      // once), so the callback holds a plain pointer: small enough for std::function's
      // inline storage, no allocation per request.
      deciding_self_ = shared_from_this();
      auto on_decision = [this](engine::Decision&& decision) {
        std::shared_ptr<Connection> self = std::move(deciding_self_);
        if (std::this_thread::get_id() == decider_ && inline_decision_) {
          OnDecision(decision);
          return;
        }
        // Posted, not dispatched: a late decision may come from inside another component's
        // handler on this thread (a DNS answer), which must return before the next request
        // of this connection calls into that component again.
        asio::post(socket_.get_executor(),
                   [self = std::move(self), decision = std::move(decision)] {
                     self->OnDecision(decision);
                     self->ProcessRequests();
                   });
      };
      if (outbound_) {
        server_.greylister_->RecordOutbound(requests_.front(), server_.clock_.Now(),
                                            std::move(on_decision));
      } else {
        server_.greylister_->Decide(
            requests_.front(), server_.clock_.Now(),
            server_.options_.close_after_reply ? server_.shared_headers_ : headers_,
            std::move(on_decision));
      }
      inline_decision_ = false;
    }
    if (!deciding_) WriteOrRead();
  }

  void OnDecision(const engine::Decision& decision) {
    auto took = server_.clock_.Monotonic() - decide_started_;
    server_.metrics_.RecordDecision(decision, took);
    log_lines_.Clear();
    engine::RenderDecisionLog(decision, server_.options_.log_format,
                              std::chrono::duration_cast<std::chrono::microseconds>(took),
                              log_lines_);
    // Lines that repeat per request while a dependency is down (store, DNS): one per
    // interval, with a count of those held back.
    bool any_rate_limited = false;
    for (const engine::LogLine& line : log_lines_) any_rate_limited |= line.rate_limited;
    if (any_rate_limited) {
      auto held_back = server_.dependency_error_log_.Allow(server_.clock_.Monotonic());
      if (!held_back) {
        log_lines_.EraseRateLimited();
      } else if (*held_back > 0) {
        log_lines_.Add(log::Level::kWarning) =
            fmt::format("({} more store or DNS errors not logged)", *held_back);
      }
    }
    for (const engine::LogLine& line : log_lines_) log::Write(line.level, line.text);
    protocol::AppendReply(write_buffer_, decision.action);
    parser_.Recycle(std::move(requests_.front()));
    if (spare_requests_.size() < kMaxSpareRequests) {
      spare_requests_.splice(spare_requests_.end(), requests_, requests_.begin());
    } else {
      requests_.pop_front();
    }
    deciding_ = false;
  }

  void WriteOrRead() {
    if (closed_) return;
    if (write_buffer_.empty()) {
      Read();
      return;
    }
    writing_buffer_.swap(write_buffer_);
    asio::async_write(socket_, asio::buffer(writing_buffer_),
                      [self = shared_from_this()](std::error_code ec, size_t) {
                        self->writing_buffer_.clear();
                        if (ec) {
                          log::Info("write error to {}: {}", self->peer_, ec.message());
                          self->Close();
                          return;
                        }
                        if (self->server_.options_.close_after_reply) {
                          self->Close();
                          return;
                        }
                        self->WriteOrRead();
                      });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    std::error_code ignored;
    socket_.shutdown(Protocol::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_.Forget(this);
  }

  Server& server_;
  Socket socket_;
  static constexpr MonoDuration::rep kNoDeadline = std::numeric_limits<MonoDuration::rep>::max();
  std::atomic<MonoDuration::rep> deadline_{kNoDeadline};  // read by the sweep
  std::atomic<bool> mid_request_{false};
  const std::string peer_;
  const bool outbound_;  // an outbound listener's connection: requests record reply pairs

 public:
  // The address counted against --max-connections-per-peer: remote TCP peers only.
  const std::optional<policy::IpAddress> limited_peer_;

 private:
  protocol::RequestParser parser_;
  MonoTime request_started_;
  MonoTime decide_started_;
  engine::LogLines log_lines_;  // reused: no allocation per decision
  std::vector<protocol::PolicyRequest> parsed_;
  // Requests parsed and not yet answered, oldest first. A list, because a decision's request
  // fields point into its request, which must not move while it is pending; answered
  // requests' nodes are kept (a few) for the next ones, so steady traffic allocates none.
  std::list<protocol::PolicyRequest> requests_;
  std::list<protocol::PolicyRequest> spare_requests_;
  static constexpr size_t kMaxSpareRequests = 4;
  engine::HeaderTracker headers_;
  std::array<char, kReadChunkBytes> read_buffer_;
  std::string write_buffer_;
  std::string writing_buffer_;
  bool reading_ = false;
  bool deciding_ = false;
  bool inline_decision_ = false;
  std::thread::id decider_;                    // the thread that asked for the pending decision
  std::shared_ptr<Connection> deciding_self_;  // held while a decision is pending
  bool stopping_ = false;
  bool closed_ = false;
};

Server::Server(asio::io_context& io, ServerOptions options, const Clock& clock)
    : io_(io),
      options_(std::move(options)),
      clock_(clock),
      metrics_(clock),
      shutdown_timer_(io),
      sweep_timer_(io) {}

void Server::Sweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](std::error_code ec) {
    if (ec) return;
    if (ExpireConnections()) Sweep();
  });
}

bool Server::ExpireConnections() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(connections_mutex_);
    if (shutting_down_) return false;
    open.assign(connections_.begin(), connections_.end());
  }
  MonoTime now = clock_.Monotonic();
  for (auto& connection : open) connection->ExpireIfDue(now);
  return true;
}

Server::~Server() = default;

Status Server::Bind() {
  for (const ListenAddress& address : options_.listen) {
    auto listener =
        std::make_unique<Listener>(Listener{address, asio::basic_socket_acceptor<Protocol>(io_)});
    std::error_code ec;
    Protocol::endpoint endpoint;
    if (address.kind == ListenAddress::Kind::kTcp) {
      asio::ip::address ip = asio::ip::make_address(address.host, ec);
      if (ec) {
        asio::ip::tcp::resolver resolver(io_);
        auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
        if (ec || results.empty()) {
          return Status::InvalidArgument(
              fmt::format("can't resolve {}: {}", address.host, ec.message()));
        }
        ip = results.begin()->endpoint().address();
      }
      endpoint = Protocol::endpoint(asio::ip::tcp::endpoint(ip, address.port));
    } else {
      struct stat info;
      if (::lstat(address.path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode)) {
        ::unlink(address.path.c_str());  // a stale socket from an earlier run
      }
      endpoint = Protocol::endpoint(asio::local::stream_protocol::endpoint(address.path));
    }
    asio::basic_socket_acceptor<Protocol>& acceptor = listener->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && endpoint.data()->sa_family == AF_INET6) {
      int on = 1;  // "::" means IPv6 only; "*" adds 0.0.0.0 separately
      ::setsockopt(acceptor.native_handle(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(options_.listen_backlog, ec);
    if (ec) {
      listeners_.clear();
      return Status::IoError(
          fmt::format("can't listen on {}: {}", address.ToString(), ec.message()));
    }
    if (address.kind == ListenAddress::Kind::kUnix &&
        ::chmod(address.path.c_str(), options_.socket_mode) != 0) {
      listeners_.clear();
      return Status::IoError(fmt::format("can't chmod {}: {}", address.path, std::strerror(errno)));
    }
    log::Notice(
        "Binding to {}{}", address.ToString(),
        address.role == ListenAddress::Role::kOutbound ? " (outbound: reply tracking)" : "");
    listeners_.push_back(std::move(listener));
  }
  return Status::Ok();
}

void Server::Start(const engine::Greylister& greylister) {
  greylister_ = &greylister;
  for (auto& listener : listeners_) Accept(*listener);
  Sweep();
}

void Server::Accept(Listener& listener) {
  listener.acceptor.async_accept(
      io_.get_executor(), [this, &listener](std::error_code ec, Socket socket) {
        if (ec == asio::error::operation_aborted || !listener.acceptor.is_open()) return;
        if (ec) {
          // Out of descriptors and the like: keep accepting, the condition may pass.
          log::Warning("accept on {} failed: {}", listener.address.ToString(), ec.message());
        } else {
          std::error_code ignored;
          const bool is_unix = listener.address.kind == ListenAddress::Kind::kUnix;
          Protocol::endpoint remote = socket.remote_endpoint(ignored);
          std::string peer = is_unix ? "unix:" + listener.address.path : DescribeEndpoint(remote);
          std::optional<policy::IpAddress> peer_ip;
          if (!is_unix) peer_ip = PeerAddress(remote);
          // Postfix on this host connects from loopback (or over a UNIX socket) with every
          // smtpd process it runs, thousands on a busy server: those peers are bounded by
          // --max-connections only, so the per-peer limit can never refuse local mail.
          std::optional<policy::IpAddress> limited_peer;
          if (peer_ip && !peer_ip->IsLoopback()) limited_peer = peer_ip;
          if (log::Enabled(log::Level::kInfo)) {
            log::Info("CONNECT {} Peer: \"{}\" Local: \"{}\"",
                      listener.address.kind == ListenAddress::Kind::kUnix ? "UNIX" : "TCP", peer,
                      listener.address.ToString());
          }
          if (socket.local_endpoint(ignored).data()->sa_family != AF_UNIX) {
            socket.set_option(asio::ip::tcp::no_delay(true), ignored);
          }
          if (!Admit(peer_ip, limited_peer, peer)) {
            metrics_.ConnectionRefused();
            socket.close(ignored);
          } else {
            auto connection = std::make_shared<Connection>(
                *this, std::move(socket), std::move(peer), limited_peer, listener.address.role);
            {
              std::lock_guard lock(connections_mutex_);
              connections_.insert(connection);
              if (limited_peer) ++connections_per_peer_[*limited_peer];
            }
            metrics_.ConnectionOpened();
            connection->Start();
          }
        }
        Accept(listener);
      });
}

bool Server::Admit(const std::optional<policy::IpAddress>& peer_ip,
                   const std::optional<policy::IpAddress>& limited_peer, const std::string& peer) {
  if (peer_ip && !options_.allow_from.empty()) {
    bool allowed = false;
    for (const policy::Network& network : options_.allow_from)
      allowed = allowed || network.Contains(*peer_ip);
    if (!allowed) {
      log::Warning("refused connection from {}: not in --allow-from", peer);
      return false;
    }
  }
  std::lock_guard lock(connections_mutex_);
  if (connections_.size() >= options_.max_connections) {
    log::Warning("refused connection from {}: {} connections open (--max-connections)", peer,
                 connections_.size());
    return false;
  }
  if (limited_peer) {
    auto it = connections_per_peer_.find(*limited_peer);
    if (it != connections_per_peer_.end() && it->second >= options_.max_connections_per_peer) {
      log::Warning(
          "refused connection from {}: {} connections from this address "
          "(--max-connections-per-peer)",
          peer, it->second);
      return false;
    }
  }
  return true;
}

void Server::Forget(Connection* connection) {
  std::lock_guard lock(connections_mutex_);
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == connection) {
      if (connection->limited_peer_) {
        auto peer = connections_per_peer_.find(*connection->limited_peer_);
        if (peer != connections_per_peer_.end() && --peer->second == 0) {
          connections_per_peer_.erase(peer);
        }
      }
      connections_.erase(it);
      metrics_.ConnectionClosed();
      break;
    }
  }
  if (shutting_down_ && connections_.empty()) shutdown_timer_.cancel();
}

void Server::Shutdown() {
  asio::dispatch(io_, [this] {
    {
      std::lock_guard lock(connections_mutex_);
      if (shutting_down_) return;
      shutting_down_ = true;
    }
    sweep_timer_.cancel();
    for (auto& listener : listeners_) {
      std::error_code ignored;
      listener->acceptor.close(ignored);
      if (listener->address.kind == ListenAddress::Kind::kUnix) {
        ::unlink(listener->address.path.c_str());
      }
    }
    std::vector<std::shared_ptr<Connection>> open;
    {
      std::lock_guard lock(connections_mutex_);
      open.assign(connections_.begin(), connections_.end());
    }
    if (open.empty()) return;
    // Armed before Stop(): an idle connection closes inline (dispatch on the io thread) and the
    // last one to go cancels this timer.
    shutdown_timer_.expires_after(options_.shutdown_grace);
    shutdown_timer_.async_wait([this](std::error_code ec) {
      if (ec) return;
      std::vector<std::shared_ptr<Connection>> left;
      {
        std::lock_guard lock(connections_mutex_);
        left.assign(connections_.begin(), connections_.end());
      }
      if (!left.empty()) log::Warning("closing {} busy connections at shutdown", left.size());
      for (auto& connection : left) connection->Abort();
    });
    for (auto& connection : open) connection->Stop();
  });
}

std::vector<unsigned short> Server::bound_ports() const {
  std::vector<unsigned short> ports;
  for (const auto& listener : listeners_) {
    if (listener->address.kind != ListenAddress::Kind::kTcp) continue;
    std::error_code ec;
    auto endpoint = listener->acceptor.local_endpoint(ec);
    const sockaddr* address = endpoint.data();
    if (address->sa_family == AF_INET) {
      ports.push_back(ntohs(reinterpret_cast<const sockaddr_in*>(address)->sin_port));
    } else if (address->sa_family == AF_INET6) {
      ports.push_back(ntohs(reinterpret_cast<const sockaddr_in6*>(address)->sin6_port));
    }
  }
  return ports;
}

size_t Server::connection_count() const {
  std::lock_guard lock(connections_mutex_);
  return connections_.size();
}

}  // namespace greylight::server
