#include "tools/policy_client.h"

#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace greylight::tools {
namespace {

// A reply is one line; anything this long is not a policy server talking.
constexpr size_t kMaxReplySize = 64 * 1024;

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

std::string Errno(std::string_view what, const std::string& where) {
  return fmt::format("{} {}: {}", what, where, std::strerror(errno));
}

// Every blocking call on the socket (connect, send, recv) gives up after `timeout`: the
// kernel keeps the time, so the tool reads no clock.
Status SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  struct timeval tv;
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>(timeout.count() % 1000 * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return Status::IoError(fmt::format("setsockopt: {}", std::strerror(errno)));
  }
  return Status::Ok();
}

Result<int> Connect(const PolicyServerAddress& address, std::chrono::milliseconds timeout) {
  const std::string where = address.ToString();
  if (address.kind == PolicyServerAddress::Kind::kUnix) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (address.path.size() >= sizeof un.sun_path) {
      return Status::InvalidArgument(fmt::format("socket path too long: {}", address.path));
    }
    std::memcpy(un.sun_path, address.path.data(), address.path.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::IoError(Errno("socket for", where));
    Socket guard(fd);
    if (Status set = SetTimeouts(fd, timeout); !set.ok()) return set;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0) {
      return Status::IoError(Errno("can't connect to", where));
    }
    return ::dup(fd);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(address.host.c_str(), address.port.c_str(), &hints, &found); rc != 0) {
    return Status::IoError(fmt::format("can't resolve {}: {}", where, ::gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (SetTimeouts(fd, timeout).ok() && ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      ::freeaddrinfo(found);
      return fd;
    }
    last_error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return Status::IoError(fmt::format("can't connect to {}: {}", where, last_error));
}

}  // namespace

Result<PolicyServerAddress> PolicyServerAddress::Parse(std::string_view text) {
  PolicyServerAddress address;
  if (text.starts_with("unix:") || text.starts_with("/")) {
    address.kind = Kind::kUnix;
    address.path = std::string(text.starts_with("unix:") ? text.substr(5) : text);
    if (address.path.empty()) return Status::InvalidArgument("unix: needs a socket path");
    return address;
  }
  if (text.starts_with("inet:")) text.remove_prefix(5);
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument(fmt::format("'{}' is not inet:HOST:PORT or unix:/PATH", text));
  }
  std::string_view host = text.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  address.host = std::string(host);
  address.port = std::string(text.substr(colon + 1));
  if (address.port.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument(fmt::format("bad port in '{}'", text));
  }
  return address;
}

std::string PolicyServerAddress::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return fmt::format("inet:[{}]:{}", host, port);
  return fmt::format("inet:{}:{}", host, port);
}

Result<std::string> FormatPolicyRequest(
    const std::vector<std::pair<std::string, std::string>>& attributes) {
  std::string request = "request=smtpd_access_policy\n";
  for (const auto& [name, value] : attributes) {
    if (name.empty() || name.find_first_of("=\n") != std::string::npos ||
        value.find('\n') != std::string::npos) {
      return Status::InvalidArgument(
          fmt::format("attribute '{}' cannot be sent: names hold no '=', values no newline", name));
    }
    request += fmt::format("{}={}\n", name, value);
  }
  request += "\n";
  return request;
}

Result<std::string> AskPolicyServer(const PolicyServerAddress& address, std::string_view request,
                                    std::chrono::milliseconds timeout) {
  auto connected = Connect(address, timeout);
  if (!connected.ok()) return connected.status();
  Socket socket(*connected);
  const std::string where = address.ToString();
  while (!request.empty()) {
    ssize_t sent = ::send(socket.fd(), request.data(), request.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return Status::IoError(Errno("can't send to", where));
    request.remove_prefix(static_cast<size_t>(sent));
  }
  std::string reply;
  char buffer[4096];
  while (reply.find("\n\n") == std::string::npos) {
    if (reply.size() > kMaxReplySize) {
      return Status::IoError(
          fmt::format("{} sent more than {} bytes without ending its reply", where, kMaxReplySize));
    }
    ssize_t got = ::recv(socket.fd(), buffer, sizeof buffer, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Status::IoError(fmt::format("{} did not answer within {} ms", where, timeout.count()));
    }
    if (got < 0) return Status::IoError(Errno("can't read from", where));
    if (got == 0) {
      return Status::IoError(fmt::format("{} closed the connection without a reply", where));
    }
    reply.append(buffer, static_cast<size_t>(got));
  }
  reply.resize(reply.find("\n\n"));
  return reply;
}

}  // namespace greylight::tools
