#include "store/redis/redis_connection.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <new>

namespace greylight::store {
namespace {

struct ContextDeleter {
  void operator()(redisContext* context) const {
    if (context != nullptr) redisFree(context);
  }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string FormatAddress(const RedisAddress& address) {
  if (address.host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", address.host, address.port);
  }
  return fmt::format("{}:{}", address.host, address.port);
}

// hiredis' reader builds its own reply tree by default (a calloc per element and a malloc
// per string), which would then be copied into RedisReply. These functions make the reader
// build RedisReply directly: a top-level reply is one allocation, an element lives in its
// parent's `elements`, sized when the array's header is read (so an element's address is
// stable while its own elements are read). hiredis frees only a top-level reply
// (freeObject), on a protocol error or when the connection closes mid-reply.
RedisReply* PlaceReply(const redisReadTask* task, RedisReply::Type type) {
  RedisReply* reply = nullptr;
  if (task->parent == nullptr) {
    reply = new (std::nothrow) RedisReply;
  } else {
    auto* parent = static_cast<RedisReply*>(task->parent->obj);
    reply = &parent->elements[static_cast<size_t>(task->idx)];
  }
  if (reply != nullptr) reply->type = type;
  return reply;
}

// Elements of one array reply, at most. Our largest are a SCAN page, an MGET of one and
// CLUSTER SLOTS (16384 slot ranges at worst); a larger header is not from a Redis server
// we asked, and would make the reader allocate its elements before any arrives.
constexpr int kMaxReplyElements = 1 << 20;

// Returning nullptr makes hiredis report "Out of memory" and fail the exchange (the
// connection is then dropped); no exception may cross into C.
void* CreateStringReply(const redisReadTask* task, char* str, size_t len) noexcept {
  RedisReply::Type type = task->type == REDIS_REPLY_ERROR    ? RedisReply::Type::kError
                          : task->type == REDIS_REPLY_STATUS ? RedisReply::Type::kStatus
                                                             : RedisReply::Type::kString;
  try {
    RedisReply* reply = PlaceReply(task, type);
    if (reply != nullptr) reply->str.assign(str, len);
    return reply;
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void* CreateArrayReply(const redisReadTask* task, int elements) noexcept {
  if (elements > kMaxReplyElements) return nullptr;
  try {
    RedisReply* reply = PlaceReply(task, RedisReply::Type::kArray);
    if (reply != nullptr) reply->elements.resize(static_cast<size_t>(std::max(elements, 0)));
    return reply;
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void* CreateIntegerReply(const redisReadTask* task, long long value) noexcept {
  RedisReply* reply = PlaceReply(task, RedisReply::Type::kInteger);
  if (reply != nullptr) reply->integer = value;
  return reply;
}

void* CreateNilReply(const redisReadTask* task) noexcept {
  return PlaceReply(task, RedisReply::Type::kNil);
}

void FreeReply(void* reply) noexcept { delete static_cast<RedisReply*>(reply); }

redisReplyObjectFunctions kReplyFunctions{CreateStringReply, CreateArrayReply, CreateIntegerReply,
                                          CreateNilReply, FreeReply};

// Appends `command` to `out` in RESP, as hiredis' formatting would: one buffer for a whole
// pipelined exchange instead of an allocation or two per command.
void AppendResp(std::string& out, const RedisCommand& command) {
  auto append_header = [&out](char kind, size_t n) {
    char digits[24];  // a size_t has at most 20 digits, so to_chars cannot fail here
    char* end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out.push_back(kind);
    out.append(digits, end);
    out.append("\r\n");
  };
  append_header('*', command.size());
  for (const std::string& arg : command) {
    append_header('$', arg.size());
    out.append(arg);
    out.append("\r\n");
  }
}

Status ContextError(const redisContext* context, std::string_view peer) {
  if (context->err == REDIS_ERR_OOM) {  // also what a refused reply reports (kReplyFunctions)
    return Status::Unavailable(
        fmt::format("redis {}: reply refused: out of memory, or an array of more than {} elements",
                    peer, kMaxReplyElements));
  }
  return Status::Unavailable(fmt::format("redis {}: {}", peer, context->errstr));
}

// hiredis' blocking mode would wait in read(2) and write(2) for as long as the socket
// timeout allows, per call. We want one deadline for a whole pipelined exchange, so the
// socket is switched to non-blocking mode and every read and write is preceded by a poll()
// bounded by the deadline. Clearing REDIS_BLOCK makes hiredis treat EAGAIN as "try again"
// instead of an error; we only ever use the buffer-level calls, never redisGetReply().
Status MakeNonBlocking(redisContext* context, std::string_view peer) {
  int flags = ::fcntl(context->fd, F_GETFL);
  if (flags < 0 || ::fcntl(context->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return Status::Unavailable(fmt::format("redis {}: fcntl: {}", peer, std::strerror(errno)));
  }
  context->flags &= ~REDIS_BLOCK;
  return Status::Ok();
}

Status WaitFor(const redisContext* context, short events, RedisDeadline deadline,
               std::string_view peer, const Clock& clock) {
  while (true) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock.Monotonic());
    if (left.count() <= 0) return Status::Unavailable(fmt::format("redis {}: timed out", peer));
    pollfd fd{context->fd, events, 0};
    int rc = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (rc > 0) return Status::Ok();  // also on POLLERR/POLLHUP: the read or write reports it
    if (rc < 0 && errno != EINTR) {
      return Status::Unavailable(fmt::format("redis {}: poll: {}", peer, std::strerror(errno)));
    }
  }
}

Result<std::vector<RedisReply>> ExchangeOn(redisContext* context, std::string_view peer,
                                           std::span<const RedisCommand> commands,
                                           RedisDeadline deadline, const Clock& clock) {
  std::string out;
  for (const RedisCommand& command : commands) AppendResp(out, command);
  if (redisAppendFormattedCommand(context, out.data(), out.size()) != REDIS_OK) {
    return ContextError(context, peer);
  }
  int written = 0;
  while (true) {
    if (redisBufferWrite(context, &written) != REDIS_OK) return ContextError(context, peer);
    if (written) break;
    if (Status s = WaitFor(context, POLLOUT, deadline, peer, clock); !s.ok()) return s;
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  while (replies.size() < commands.size()) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(context, &raw) != REDIS_OK) return ContextError(context, peer);
    if (raw != nullptr) {
      std::unique_ptr<RedisReply> reply(static_cast<RedisReply*>(raw));  // kReplyFunctions
      replies.push_back(std::move(*reply));
      continue;
    }
    if (Status s = WaitFor(context, POLLIN, deadline, peer, clock); !s.ok()) return s;
    if (redisBufferRead(context) != REDIS_OK) return ContextError(context, peer);
  }
  return replies;
}

Result<ContextPtr> ConnectTcp(const RedisAddress& address, std::chrono::milliseconds timeout) {
  std::string peer = FormatAddress(address);
  ContextPtr context(
      redisConnectWithTimeout(address.host.c_str(), address.port, ToTimeval(timeout)));
  if (context == nullptr) return Status::Unavailable(fmt::format("redis {}: out of memory", peer));
  if (context->err != 0) return ContextError(context.get(), peer);
  // Best effort: keep-alive only speeds up noticing a dead peer; deadlines bound the rest.
  if (redisEnableKeepAlive(context.get()) != REDIS_OK) {
    context->err = 0;  // hiredis records the failure; the connection itself is fine
  }
  if (Status s = MakeNonBlocking(context.get(), peer); !s.ok()) return s;
  context->reader->fn = &kReplyFunctions;
  return context;
}

Result<ContextPtr> ConnectUnix(const std::string& path, std::chrono::milliseconds timeout) {
  ContextPtr context(redisConnectUnixWithTimeout(path.c_str(), ToTimeval(timeout)));
  if (context == nullptr) return Status::Unavailable(fmt::format("redis {}: out of memory", path));
  if (context->err != 0) return ContextError(context.get(), path);
  if (Status s = MakeNonBlocking(context.get(), path); !s.ok()) return s;
  context->reader->fn = &kReplyFunctions;
  return context;
}

// Error replies that describe a passing state of the server rather than a refusal of our
// configuration: retrying later may succeed.
bool IsTransientError(const RedisReply& reply) {
  for (std::string_view code : {"LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN"}) {
    if (reply.IsError(code)) return true;
  }
  return false;
}

RedisCommand AuthCommand(const std::string& user, const std::string& password) {
  if (user.empty()) return {"AUTH", password};
  return {"AUTH", user, password};
}

// Asks each sentinel in turn for the address of the master, as the Sentinel client
// guidelines describe: the first sentinel that names one wins.
Result<RedisAddress> AskSentinels(const RedisEndpoint& endpoint, std::chrono::milliseconds timeout,
                                  const Clock& clock) {
  std::vector<std::string> problems;
  bool all_refused = true;  // every sentinel rejected our credentials
  for (const RedisAddress& sentinel : endpoint.addresses) {
    std::string peer = "sentinel " + FormatAddress(sentinel);
    auto context = ConnectTcp(sentinel, timeout);
    if (!context.ok()) {
      problems.push_back(context.status().message());
      all_refused = false;
      continue;
    }
    std::vector<RedisCommand> commands;
    if (!endpoint.sentinel_password.empty()) {
      commands.push_back(AuthCommand(endpoint.sentinel_user, endpoint.sentinel_password));
    }
    commands.push_back({"SENTINEL", "get-master-addr-by-name", endpoint.master_name});
    auto replies = ExchangeOn(context->get(), peer, commands, clock.Monotonic() + timeout, clock);
    if (!replies.ok()) {
      problems.push_back(replies.status().message());
      all_refused = false;
      continue;
    }
    if (replies->front().is_error()) {
      problems.push_back(fmt::format("{}: {}", peer, replies->front().str));
      continue;
    }
    all_refused = false;
    const RedisReply& answer = replies->back();
    if (answer.type != RedisReply::Type::kArray || answer.elements.size() != 2) {
      problems.push_back(fmt::format("{}: no master named '{}'", peer, endpoint.master_name));
      continue;
    }
    RedisAddress master;
    master.host = answer.elements[0].str;
    const std::string& port = answer.elements[1].str;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), master.port);
    if (ec != std::errc() || end != port.data() + port.size() || master.host.empty()) {
      problems.push_back(fmt::format("{}: bad master address '{}:{}'", peer, master.host, port));
      continue;
    }
    return master;
  }
  std::string message = fmt::format("no sentinel named the master '{}': {}", endpoint.master_name,
                                    fmt::join(problems, "; "));
  if (all_refused && !problems.empty()) return Status::InvalidArgument(std::move(message));
  return Status::Unavailable(std::move(message));
}

}  // namespace

bool RedisReply::IsError(std::string_view code) const {
  return type == Type::kError && str.starts_with(code) &&
         (str.size() == code.size() || str[code.size()] == ' ');
}

RedisConnection::RedisConnection(redisContext* context, std::string peer, const Clock& clock)
    : context_(context), peer_(std::move(peer)), clock_(clock) {}

RedisConnection::~RedisConnection() { redisFree(context_); }

Result<std::unique_ptr<RedisConnection>> RedisConnection::Open(const RedisEndpoint& endpoint,
                                                               std::chrono::milliseconds timeout,
                                                               std::span<const RedisCommand> setup,
                                                               const Clock& clock) {
  Result<ContextPtr> context = Status::Unavailable("no address");
  std::string peer;
  bool check_role = false;
  switch (endpoint.kind) {
    case RedisEndpoint::Kind::kTcp:
    case RedisEndpoint::Kind::kCluster:  // one node of it: the first address
      if (endpoint.addresses.empty()) return Status::InvalidArgument("redis: no server address");
      peer = FormatAddress(endpoint.addresses.front());
      context = ConnectTcp(endpoint.addresses.front(), timeout);
      break;
    case RedisEndpoint::Kind::kUnix:
      peer = endpoint.unix_path;
      context = ConnectUnix(endpoint.unix_path, timeout);
      break;
    case RedisEndpoint::Kind::kSentinel: {
      auto master = AskSentinels(endpoint, timeout, clock);
      if (!master.ok()) return master.status();
      peer = FormatAddress(*master);
      context = ConnectTcp(*master, timeout);
      // A sentinel may name a master that has just been demoted: the guidelines ask
      // clients to confirm with ROLE before writing.
      check_role = true;
      break;
    }
  }
  if (!context.ok()) return context.status();

  std::vector<RedisCommand> commands;
  if (!endpoint.password.empty()) commands.push_back(AuthCommand(endpoint.user, endpoint.password));
  if (endpoint.db != 0) commands.push_back({"SELECT", std::to_string(endpoint.db)});
  const size_t role_index = commands.size();
  if (check_role) commands.push_back({"ROLE"});
  commands.insert(commands.end(), setup.begin(), setup.end());
  auto replies = ExchangeOn(context->get(), peer, commands, clock.Monotonic() + timeout, clock);
  if (!replies.ok()) return replies.status();
  for (size_t i = 0; i < replies->size(); ++i) {
    const RedisReply& reply = (*replies)[i];
    if (!reply.is_error()) continue;
    // Names only the command: an AUTH argument is a password.
    std::string message = fmt::format("redis {}: {} refused: {}", peer, commands[i][0], reply.str);
    if (IsTransientError(reply)) return Status::Unavailable(std::move(message));
    return Status::InvalidArgument(std::move(message));
  }
  if (check_role) {
    const RedisReply& role = (*replies)[role_index];
    std::string_view name = role.type == RedisReply::Type::kArray && !role.elements.empty()
                                ? std::string_view(role.elements[0].str)
                                : std::string_view("unknown");
    if (name != "master") {
      return Status::Unavailable(
          fmt::format("redis {}: named master of '{}' by a sentinel, but "
                      "its role is {}",
                      peer, endpoint.master_name, name));
    }
  }
  return std::unique_ptr<RedisConnection>(
      new RedisConnection(context->release(), std::move(peer), clock));
}

Result<std::vector<RedisReply>> RedisConnection::Exchange(std::span<const RedisCommand> commands,
                                                          RedisDeadline deadline) {
  return ExchangeOn(context_, peer_, commands, deadline, clock_);
}

}  // namespace greylight::store
