#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "store/redis/redis_uri.h"
#include "util/clock.h"
#include "util/status.h"

struct redisContext;

namespace greylight::store {

// One Redis command, as its arguments (binary-safe).
using RedisCommand = std::vector<std::string>;
using RedisDeadline = MonoTime;

// A reply, copied out of hiredis so that callers never see hiredis types.
struct RedisReply {
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
  // True for an error reply whose code (first word) is `code`, e.g. "NOSCRIPT".
  bool IsError(std::string_view code) const;
};

// One blocking-free connection to a Redis data server, for the exclusive use of one thread.
// Every operation is bounded by a deadline on `clock`'s monotonic time; hiredis' quirks
// (non-blocking mode under its blocking API, reply ownership) stay inside redis_connection.cc.
//
// Thread-safety: none; one thread owns a connection.
class RedisConnection {
 public:
  // Connects to the data server of `endpoint` (asking the sentinels for the master first
  // when it is a sentinel endpoint), then sends AUTH and SELECT as configured, followed by
  // `setup` in the same round trip. Each network step (one sentinel, the server) is bounded
  // by `timeout`. Errors: kUnavailable for faults that may pass (unreachable, timed out,
  // loading, not the master), kInvalidArgument when the server refuses the configuration
  // (bad password, no such database, a setup command rejected).
  // REQUIRES: the calling thread blocks SIGPIPE (or ignores it), as hiredis writes with
  // write(2); `clock` outlives the connection.
  static Result<std::unique_ptr<RedisConnection>> Open(const RedisEndpoint& endpoint,
                                                       std::chrono::milliseconds timeout,
                                                       std::span<const RedisCommand> setup,
                                                       const Clock& clock);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends all `commands` pipelined (one write) and reads one reply for each, in order,
  // before `deadline`. Error replies are returned as replies. A non-ok Status (kUnavailable)
  // means the connection is broken or out of step and must be discarded.
  Result<std::vector<RedisReply>> Exchange(std::span<const RedisCommand> commands,
                                           RedisDeadline deadline);

  // The server actually connected to ("127.0.0.1:6379", "/run/redis.sock"), for logs.
  const std::string& peer() const { return peer_; }

 private:
  RedisConnection(redisContext* context, std::string peer, const Clock& clock);
  redisContext* context_;
  std::string peer_;
  const Clock& clock_;
};

}  // namespace greylight::store
