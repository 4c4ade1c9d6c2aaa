#pragma once

// DNS servers for the DNS list tests, all on 127.0.0.1 only:
//  * UnboundServer: a real `unbound` child process on a free port serving local zones
//    from a config file in a temporary directory, started and stopped by PID;
//  * BlackholeDns: a bound UDP socket that is never read, so queries to it time out;
//  * ScriptedDns: a thread answering every query with a reply built by a test function
//    (malformed answers, wrong rcodes), for the robustness tests.
// Header-only.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/redis_server.h"  // WaitUntil, FindProgram
#include "support/temp_dir.h"
#include "util/status.h"

namespace greylight::testing_support {

namespace dns_detail {

// A UDP socket bound to 127.0.0.1:`port` (0: any free port); -1 on failure.
inline int BindUdp(int port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline int BoundPort(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  return ntohs(address.sin_port);
}

// A port free for both UDP and TCP on 127.0.0.1 right now (DNS uses both).
inline int FreeDnsPort() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int udp = BindUdp(0);
    if (udp < 0) return 0;
    int port = BoundPort(udp);
    int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool tcp_free =
        tcp >= 0 && ::bind(tcp, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    if (tcp >= 0) ::close(tcp);
    ::close(udp);
    if (tcp_free) return port;
  }
  return 0;
}

// The wire form of a query for `name` (type A, class IN, recursion desired).
inline std::vector<uint8_t> EncodeQuery(uint16_t id, const std::string& name) {
  std::vector<uint8_t> message{static_cast<uint8_t>(id >> 8),
                               static_cast<uint8_t>(id & 0xFF),
                               0x01,
                               0x00,
                               0,
                               1,
                               0,
                               0,
                               0,
                               0,
                               0,
                               0};
  std::stringstream labels(name);
  for (std::string label; std::getline(labels, label, '.');) {
    message.push_back(static_cast<uint8_t>(label.size()));
    message.insert(message.end(), label.begin(), label.end());
  }
  message.insert(message.end(), {0, 0, 1, 0, 1});
  return message;
}

// Sends one query to 127.0.0.1:`port` and returns the reply, or nullopt after `timeout`.
inline std::optional<std::vector<uint8_t>> QueryOnce(int port, const std::string& name,
                                                     std::chrono::milliseconds timeout) {
  int fd = BindUdp(0);
  if (fd < 0) return std::nullopt;
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(static_cast<uint16_t>(port));
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<uint8_t> query = EncodeQuery(0x4242, name);
  std::optional<std::vector<uint8_t>> reply;
  if (::sendto(fd, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&server),
               sizeof server) == static_cast<ssize_t>(query.size())) {
    pollfd waiter{fd, POLLIN, 0};
    if (::poll(&waiter, 1, static_cast<int>(timeout.count())) == 1) {
      std::vector<uint8_t> buffer(4096);
      ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
      if (n > 0) {
        buffer.resize(static_cast<size_t>(n));
        reply = std::move(buffer);
      }
    }
  }
  ::close(fd);
  return reply;
}

}  // namespace dns_detail

// A real unbound on 127.0.0.1:port(). `server_lines` go into its "server:" section
// (local-zone / local-data lines); `extra_sections` after it (stub-zone: ...).
//
// Safety: every name outside the configured local zones is refused ("local-zone: .
// refuse"), outgoing queries may only leave from 127.0.0.1, and unbound never queries
// localhost (its default), so the process cannot send a packet off this machine. A
// stub-zone pointing at 127.0.0.1 therefore answers SERVFAIL at once: the way these
// tests get a SERVFAIL.
class UnboundServer {
 public:
  static constexpr std::chrono::milliseconds kStartTimeout{10000};
  static constexpr std::chrono::milliseconds kStopTimeout{5000};
  static constexpr int kStartAttempts = 3;
  // A name the config always serves, asked to see whether the server is up.
  static constexpr const char* kReadyName = "ready.greylight-test";

  static Result<std::unique_ptr<UnboundServer>> Start(const std::string& server_lines,
                                                      const std::string& extra_sections = "") {
    auto program = FindProgram("unbound");
    if (!program) {
      return Status::NotFound(
          "unbound is not installed (not in $PATH, /usr/sbin or /usr/bin); the DNS list "
          "tests need it: DEBIAN_FRONTEND=noninteractive apt-get install -y unbound");
    }
    std::unique_ptr<UnboundServer> server(new UnboundServer());
    server->program_ = *program;
    std::string last_problem;
    for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
      server->port_ = dns_detail::FreeDnsPort();
      if (server->port_ == 0) return Status::IoError("no free loopback port");
      server->WriteConfig(server_lines, extra_sections);
      Status status = server->Spawn();
      if (!status.ok()) return status;
      bool up = WaitUntil(
          [&] {
            if (::waitpid(server->pid_, nullptr, WNOHANG) == server->pid_) {
              server->pid_ = -1;
              return true;  // exited: stop waiting
            }
            return dns_detail::QueryOnce(server->port_, kReadyName, std::chrono::milliseconds(200))
                .has_value();
          },
          kStartTimeout);
      if (up && server->pid_ > 0) return server;
      last_problem = server->pid_ > 0 ? "no answer within the start timeout" : "exited at start";
      server->Stop();
    }
    return Status::IoError("unbound on port " + std::to_string(server->port_) + ": " +
                           last_problem + "; log:\n" + server->LogTail());
  }

  ~UnboundServer() { Stop(); }
  UnboundServer(const UnboundServer&) = delete;
  UnboundServer& operator=(const UnboundServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // The c-ares server list for this server.
  std::string servers() const { return "127.0.0.1:" + std::to_string(port_); }

  // SIGTERM, then SIGKILL if it has not exited within kStopTimeout.
  void Stop() {
    StopChild(pid_, std::chrono::duration_cast<std::chrono::milliseconds>(kStopTimeout));
    pid_ = -1;
  }

  std::string LogTail(size_t max_bytes = 2000) const {
    return FileTail((dir_.path() / "unbound.log").string(), max_bytes);
  }

 private:
  UnboundServer() = default;

  void WriteConfig(const std::string& server_lines, const std::string& extra_sections) {
    std::ofstream config(dir_.path() / "unbound.conf");
    config << "server:\n"
           << "  interface: 127.0.0.1\n"
           << "  port: " << port_ << "\n"
           << "  do-ip6: no\n"
           << "  do-daemonize: no\n"
           << "  username: \"\"\n"
           << "  chroot: \"\"\n"
           << "  directory: \"" << dir_.path().string() << "\"\n"
           << "  pidfile: \"\"\n"
           << "  use-syslog: no\n"
           << "  logfile: \"\"\n"
           << "  verbosity: 1\n"
           << "  num-threads: 1\n"
           << "  so-reuseport: no\n"
           << "  access-control: 127.0.0.0/8 allow\n"
           << "  module-config: \"iterator\"\n"
           << "  outgoing-interface: 127.0.0.1\n"
           << "  do-not-query-localhost: yes\n"
           << "  local-zone: \".\" refuse\n"
           << "  local-zone: \"" << kReadyName << ".\" static\n"
           << "  local-data: \"" << kReadyName << ". 60 IN A 127.0.0.1\"\n"
           << server_lines << "\n"
           << extra_sections << "\n"
           << "remote-control:\n"
           << "  control-enable: no\n";
  }

  Status Spawn() {
    std::string config = (dir_.path() / "unbound.conf").string();
    std::vector<std::string> args{"unbound", "-d", "-c", config};
    auto pid = SpawnWithLog(program_, std::move(args), (dir_.path() / "unbound.log").string());
    if (!pid.ok()) return pid.status();
    pid_ = *pid;
    return Status::Ok();
  }

  TempDir dir_;
  std::string program_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A UDP port on 127.0.0.1 where a socket is bound but never read: queries sent there
// are neither answered nor refused (no ICMP port unreachable), like a dead server
// behind a silent firewall.
class BlackholeDns {
 public:
  BlackholeDns() : fd_(dns_detail::BindUdp(0)), port_(fd_ >= 0 ? dns_detail::BoundPort(fd_) : 0) {}
  ~BlackholeDns() {
    if (fd_ >= 0) ::close(fd_);
  }
  BlackholeDns(const BlackholeDns&) = delete;
  BlackholeDns& operator=(const BlackholeDns&) = delete;

  int port() const { return port_; }
  std::string servers() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_;
  int port_;
};

// A UDP DNS "server" on 127.0.0.1 whose answer to each query is `respond(query)` (an
// empty result sends nothing). Runs one thread until destroyed; each wait is bounded so
// the destructor returns within ~100 ms.
class ScriptedDns {
 public:
  using Responder = std::function<std::vector<uint8_t>(const std::vector<uint8_t>& query)>;

  explicit ScriptedDns(Responder respond)
      : fd_(dns_detail::BindUdp(0)),
        port_(fd_ >= 0 ? dns_detail::BoundPort(fd_) : 0),
        respond_(std::move(respond)),
        thread_([this] { Serve(); }) {}
  ~ScriptedDns() {
    stop_ = true;
    thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  ScriptedDns(const ScriptedDns&) = delete;
  ScriptedDns& operator=(const ScriptedDns&) = delete;

  int port() const { return port_; }
  std::string servers() const { return "127.0.0.1:" + std::to_string(port_); }
  int queries() const { return queries_.load(); }

 private:
  void Serve() {
    std::vector<uint8_t> buffer(4096);
    while (!stop_ && fd_ >= 0) {
      pollfd waiter{fd_, POLLIN, 0};
      if (::poll(&waiter, 1, 100) != 1) continue;
      sockaddr_in peer{};
      socklen_t peer_length = sizeof peer;
      ssize_t n = ::recvfrom(fd_, buffer.data(), buffer.size(), 0,
                             reinterpret_cast<sockaddr*>(&peer), &peer_length);
      if (n <= 0) continue;
      ++queries_;
      std::vector<uint8_t> reply = respond_({buffer.begin(), buffer.begin() + n});
      if (reply.empty()) continue;
      ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), peer_length);
    }
  }

  int fd_;
  int port_;
  Responder respond_;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

}  // namespace greylight::testing_support
