#pragma once

// Real redis-server and redis-sentinel processes for tests: started on free loopback ports
// with fork/exec, stopped by PID. Header-only, with its own minimal RESP client so that
// tests need no Redis client library.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/temp_dir.h"
#include "util/status.h"

namespace greylight::testing_support {

// Polls `condition` every 20 ms until it holds or `timeout` passes; returns its last value.
// For waiting on other processes, which cannot tell us when they are ready.
inline bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A reply of the RESP2 protocol.
struct RespReply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;
  long long integer = 0;
  std::vector<RespReply> elements;
  bool is_error() const { return type == Type::kError; }
};

namespace redis_detail {

// Parses one reply of `buffer` from `pos`; nullopt if the buffer does not hold all of it yet.
inline std::optional<RespReply> Parse(const std::string& buffer, size_t& pos) {
  size_t eol = buffer.find("\r\n", pos);
  if (eol == std::string::npos) return std::nullopt;
  char kind = buffer[pos];
  std::string line = buffer.substr(pos + 1, eol - pos - 1);
  size_t next = eol + 2;
  RespReply reply;
  switch (kind) {
    case '+':
      reply.type = RespReply::Type::kStatus;
      reply.str = line;
      break;
    case '-':
      reply.type = RespReply::Type::kError;
      reply.str = line;
      break;
    case ':':
      reply.type = RespReply::Type::kInteger;
      reply.integer = std::stoll(line);
      break;
    case '$': {
      long long length = std::stoll(line);
      if (length >= 0) {
        if (buffer.size() < next + length + 2) return std::nullopt;
        reply.type = RespReply::Type::kString;
        reply.str = buffer.substr(next, length);
        next += length + 2;
      }
      break;
    }
    case '*': {
      long long count = std::stoll(line);
      if (count >= 0) {
        reply.type = RespReply::Type::kArray;
        for (long long i = 0; i < count; ++i) {
          auto element = Parse(buffer, next);
          if (!element) return std::nullopt;
          reply.elements.push_back(std::move(*element));
        }
      }
      break;
    }
    default:
      reply.type = RespReply::Type::kError;
      reply.str = "test client: unparsable reply";
      break;
  }
  pos = next;
  return reply;
}

}  // namespace redis_detail

// Sends `commands` pipelined to 127.0.0.1:`port` on a new connection and returns one reply
// per command. Every socket operation is bounded by `timeout`.
inline Result<std::vector<RespReply>> RedisCommands(
    int port, const std::vector<std::vector<std::string>>& commands,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError(std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return Status::Unavailable(std::string("connect: ") + std::strerror(errno));
  }
  std::string out;
  for (const auto& command : commands) {
    out += "*" + std::to_string(command.size()) + "\r\n";
    for (const std::string& arg : command) {
      out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    }
  }
  for (size_t sent = 0; sent < out.size();) {
    ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return Status::Unavailable(std::string("send: ") + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }
  std::string buffer;
  std::vector<RespReply> replies;
  size_t pos = 0;
  while (replies.size() < commands.size()) {
    size_t before = pos;
    if (auto reply = redis_detail::Parse(buffer, pos)) {
      replies.push_back(std::move(*reply));
      continue;
    }
    pos = before;
    char chunk[16384];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
      return Status::Unavailable(n == 0 ? "connection closed" : std::strerror(errno));
    }
    buffer.append(chunk, static_cast<size_t>(n));
  }
  return replies;
}

inline Result<RespReply> RedisCommand(
    int port, std::vector<std::string> command,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
  auto replies = RedisCommands(port, {std::move(command)}, timeout);
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

// The path of `name` in $PATH or the usual system directories, if installed.
inline std::optional<std::string> FindProgram(std::string_view name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream stream(path);
    for (std::string dir; std::getline(stream, dir, ':');) {
      if (!dir.empty()) dirs.push_back(dir);
    }
  }
  for (const char* dir : {"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"}) {
    dirs.push_back(dir);
  }
  for (const std::string& dir : dirs) {
    std::string candidate = dir + "/" + std::string(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// Binds `fd` (an AF_INET stream socket) to 127.0.0.1 on a port the kernel picks. Returns
// that port, or 0 if the bind failed.
inline int BindLoopbackAnyPort(int fd) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return 0;
  }
  return ntohs(address.sin_port);
}

// A loopback TCP port nobody listens on right now (the kernel's choice for an ephemeral
// bind). Another process may take it before we use it; Start() retries with a new one.
inline int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int port = BindLoopbackAnyPort(fd);
  ::close(fd);
  return port;
}

// One redis-server or redis-sentinel child process on 127.0.0.1, in its own temporary
// directory (which also holds its log). The destructor stops it: SIGTERM, then SIGKILL
// after 5 s. Not thread-safe.
class RedisServer {
 public:
  static constexpr std::chrono::milliseconds kStartTimeout{10000};
  static constexpr std::chrono::milliseconds kStopTimeout{5000};
  static constexpr int kStartAttempts = 3;

  // Starts `redis-server --port P --bind 127.0.0.1 --save '' --appendonly no --dir DIR`
  // plus `extra_args` on a free port (or on `port` if non-zero) and waits until it answers
  // PING (with PONG, or NOAUTH when it requires a password). Fails with a message saying what to
  // install if redis-server is missing.
  static Result<std::unique_ptr<RedisServer>> Start(std::vector<std::string> extra_args = {},
                                                    int port = 0) {
    auto program = FindProgram("redis-server");
    if (!program) {
      return Status::NotFound(
          "redis-server is not installed (not in $PATH, /usr/bin or /usr/sbin); the Redis "
          "tests need it: DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server "
          "redis-sentinel");
    }
    std::unique_ptr<RedisServer> server(new RedisServer());
    server->program_ = *program;
    server->argv0_ = "redis-server";
    server->extra_args_ = std::move(extra_args);
    Status status = server->Launch(port);
    if (!status.ok()) return status;
    return server;
  }

  // Starts a replica of the server on `master_port`.
  static Result<std::unique_ptr<RedisServer>> StartReplica(
      int master_port, std::vector<std::string> extra_args = {}) {
    extra_args.insert(extra_args.begin(),
                      {"--replicaof", "127.0.0.1", std::to_string(master_port)});
    return Start(std::move(extra_args));
  }

  // Starts a sentinel monitoring `master_name` at 127.0.0.1:`master_port` with quorum 1,
  // so a lone sentinel fails over by itself, and short timeouts for tests.
  static Result<std::unique_ptr<RedisServer>> StartSentinel(
      const std::string& master_name, int master_port,
      std::chrono::milliseconds down_after = std::chrono::milliseconds(1000),
      std::chrono::milliseconds failover_timeout = std::chrono::milliseconds(3000)) {
    auto program = FindProgram("redis-sentinel");
    bool via_server = false;
    if (!program) {
      program = FindProgram("redis-server");  // redis-server --sentinel works too
      via_server = true;
    }
    if (!program) {
      return Status::NotFound(
          "redis-sentinel is not installed; the Sentinel test needs it: "
          "DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-sentinel");
    }
    std::unique_ptr<RedisServer> server(new RedisServer());
    server->program_ = *program;
    server->argv0_ = via_server ? "redis-server" : "redis-sentinel";
    server->sentinel_config_ = [=](int port, const std::string& dir) {
      return "port " + std::to_string(port) + "\nbind 127.0.0.1\ndir " + dir +
             "\nsentinel monitor " + master_name + " 127.0.0.1 " + std::to_string(master_port) +
             " 1\nsentinel down-after-milliseconds " + master_name + " " +
             std::to_string(down_after.count()) + "\nsentinel failover-timeout " + master_name +
             " " + std::to_string(failover_timeout.count()) + "\n";
    };
    if (via_server) server->extra_args_ = {"--sentinel"};
    Status status = server->Launch(0);
    if (!status.ok()) return status;
    return server;
  }

  ~RedisServer() { Stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  const std::filesystem::path& dir() const { return dir_.path(); }

  Result<RespReply> Command(std::vector<std::string> command) const {
    return RedisCommand(port_, std::move(command));
  }

  // Kills the process at once (SIGKILL), as a crash would, and reaps it.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // Freezes (SIGSTOP) and thaws (SIGCONT) the process: a server that accepts connections
  // (the kernel completes them) but never answers.
  void Suspend() const {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void Resume() const {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  // Starts the server again on the same port with the same arguments (and directory).
  Status Restart() {
    Stop();
    return Launch(port_);
  }

  // Stops the process: SIGTERM, then SIGKILL if it has not exited within kStopTimeout.
  void Stop() {
    StopChild(pid_, std::chrono::duration_cast<std::chrono::milliseconds>(kStopTimeout));
    pid_ = -1;
  }

  // The last lines of the process' output, for failure messages.
  std::string LogTail(size_t max_bytes = 2000) const {
    return FileTail((dir_.path() / "redis.log").string(), max_bytes);
  }

 private:
  RedisServer() = default;

  Status Launch(int fixed_port) {
    std::string last_problem;
    for (int attempt = 0; attempt < (fixed_port != 0 ? 1 : kStartAttempts); ++attempt) {
      port_ = fixed_port != 0 ? fixed_port : FreeLoopbackPort();
      if (port_ == 0) return Status::IoError("no free loopback port");
      Status status = Spawn();
      if (!status.ok()) return status;
      bool up = WaitUntil(
          [this] {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
              pid_ = -1;
              return true;  // exited: stop waiting
            }
            // Any answer but LOADING means up; NOAUTH too (the server wants a password).
            auto pong = Command({"PING"});
            return pong.ok() && !pong->str.starts_with("LOADING");
          },
          kStartTimeout);
      if (up && pid_ > 0) return Status::Ok();
      last_problem =
          pid_ > 0 ? "no answer to PING within " + std::to_string(kStartTimeout.count()) + " ms"
                   : "exited at start";
      Stop();
    }
    return Status::IoError(argv0_ + " on port " + std::to_string(port_) + ": " + last_problem +
                           "; log:\n" + LogTail());
  }

  Status Spawn() {
    std::vector<std::string> args{argv0_};
    if (sentinel_config_) {
      std::string path = (dir_.path() / "sentinel.conf").string();
      std::ofstream(path) << sentinel_config_(port_, dir_.path().string());
      args.push_back(path);
      args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    } else {
      args.insert(args.end(),
                  {"--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--daemonize", "no", "--dir", dir_.path().string()});
      args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    }
    auto pid = SpawnWithLog(program_, std::move(args), (dir_.path() / "redis.log").string());
    if (!pid.ok()) return pid.status();
    pid_ = *pid;
    return Status::Ok();
  }

  TempDir dir_;
  std::string program_;
  std::string argv0_;
  std::vector<std::string> extra_args_;
  std::function<std::string(int port, const std::string& dir)> sentinel_config_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace greylight::testing_support
