#include "reputation/dns_resolver.h"

#include <ares.h>

#include <algorithm>
#include <asio/bind_executor.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace greylight::reputation {
namespace {

constexpr int kClassIn = 1;
// c-ares gets half the query timeout per attempt, so one lost UDP packet is retransmitted
// before the caller's own deadline ends the lookup.
constexpr int kAresTries = 2;

// What c-ares' status says when there is no message to read, or the message cannot be
// trusted (c-ares has already judged the rcode).
DnsRecords FailureFor(int status) {
  switch (status) {
    case ARES_ETIMEOUT:
      return DnsRecords::Failed("timeout");
    case ARES_ESERVFAIL:
      return DnsRecords::Failed("SERVFAIL");
    case ARES_EREFUSED:
      return DnsRecords::Failed("REFUSED");
    case ARES_ENOTIMP:
      return DnsRecords::Failed("NOTIMP");
    case ARES_EFORMERR:
      return DnsRecords::Failed("FORMERR");
    case ARES_EBADRESP:
      return DnsRecords::Failed("malformed answer");
    case ARES_ECONNREFUSED:
      return DnsRecords::Failed("connection refused");
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
      return DnsRecords::Failed("shut down");
    default:
      return DnsRecords::Failed(ares_strerror(status));
  }
}

DnsRecords Interpret(DnsType type, int status, const unsigned char* abuf, int alen,
                     Seconds default_negative_ttl) {
  const bool has_message = abuf != nullptr && alen > 0;
  switch (status) {
    case ARES_SUCCESS:
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
      if (has_message) {
        return ReadRecords(type, std::span<const uint8_t>(abuf, static_cast<size_t>(alen)),
                           default_negative_ttl);
      }
      if (status == ARES_SUCCESS) return DnsRecords::Failed("malformed answer");
      {
        DnsRecords records;
        records.kind =
            status == ARES_ENOTFOUND ? DnsRecords::Kind::kNxDomain : DnsRecords::Kind::kEmpty;
        records.ttl = default_negative_ttl;
        return records;
      }
    default:
      return FailureFor(status);
  }
}

std::string QueryKey(std::string_view name, DnsType type) {
  std::string key(name);
  key.push_back('/');
  key.append(DnsTypeName(type));
  return key;
}

}  // namespace

// All c-ares state lives here and is touched only on `strand_`. Every handler holds a
// shared_ptr to the Impl, so the object outlives the last callback even after the
// DnsResolver that owns it is gone.
class DnsResolver::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, const DnsResolverOptions& options)
      : io_(io), strand_(asio::make_strand(io)), options_(options), service_timer_(strand_) {}

  ~Impl() {
    waiting_.clear();  // nobody is left to answer
    if (channel_ != nullptr) ares_destroy(channel_);
  }

  Status Init() {
    static std::once_flag once;
    static int library_status = ARES_SUCCESS;
    std::call_once(once, [] { library_status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (library_status != ARES_SUCCESS) {
      return Status::Unavailable(std::string("c-ares: ") + ares_strerror(library_status));
    }
    ares_options ares{};
    ares.sock_state_cb = &Impl::OnSocketState;
    ares.sock_state_cb_data = this;
    ares.timeout =
        static_cast<int>(std::max<long long>(1, options_.query_timeout.count() / kAresTries));
    ares.tries = kAresTries;
    // Without NOCHECKRESP, c-ares 1.18 turns a SERVFAIL or REFUSED answer into "could not
    // contact DNS servers" after trying the other resolvers; with it we see the rcode and
    // answer at once. A resolver that answers SERVFAIL is working and reporting trouble
    // upstream, which another resolver would most likely hit too.
    ares.flags = ARES_FLAG_NOCHECKRESP;
    const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    int status = ares_init_options(&channel_, &ares, mask);
    if (status != ARES_SUCCESS) {
      channel_ = nullptr;
      return Status::Unavailable(std::string("c-ares: ") + ares_strerror(status));
    }
    if (!options_.servers.empty()) {
      status = ares_set_servers_ports_csv(channel_, options_.servers.c_str());
      if (status != ARES_SUCCESS) {
        return Status::InvalidArgument("DNS servers '" + options_.servers +
                                       "': " + ares_strerror(status));
      }
    }
    return Status::Ok();
  }

  bool Query(const std::string& name, DnsType type, DnsCallback done) {
    if (channel_ == nullptr) {
      done(DnsRecords::Failed("shut down"));
      return false;
    }
    std::string key = QueryKey(name, type);
    // Register before querying: c-ares may call back from inside ares_query.
    auto [it, is_new] = waiting_.try_emplace(key);
    it->second.push_back(std::move(done));
    if (!is_new) return false;
    ares_query(channel_, name.c_str(), kClassIn, static_cast<int>(type), &Impl::OnAres,
               new QueryArg{this, std::move(key), type});
    ArmServiceTimer();
    return true;
  }

  void Shutdown() {
    if (channel_ == nullptr) return;
    // The channel goes first, so a callback below that asks again fails at once instead
    // of queueing on a channel about to be destroyed.
    ares_channel channel = std::exchange(channel_, nullptr);
    service_timer_.cancel();
    auto waiting = std::move(waiting_);
    waiting_.clear();
    ares_destroy(channel);  // queries end with ARES_EDESTRUCTION, sockets are released
    watches_.clear();
    const DnsRecords shut_down = DnsRecords::Failed("shut down");
    for (auto& [key, callbacks] : waiting) {
      for (DnsCallback& callback : callbacks) callback(shut_down);
    }
  }

  DnsStrand& strand() { return strand_; }

 private:
  struct QueryArg {
    Impl* impl;
    std::string key;
    DnsType type;
  };
  // A socket c-ares asked us to watch. The descriptor never owns the fd: c-ares closes
  // it, after telling us to stop watching (release() below).
  struct Watch {
    Watch(asio::io_context& io, ares_socket_t socket) : descriptor(io), fd(socket) {}
    asio::posix::stream_descriptor descriptor;
    ares_socket_t fd;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;
    bool writing = false;
    bool closed = false;
  };

  // c-ares' query callback. Runs inside an ares_* call made on the strand.
  static void OnAres(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    std::unique_ptr<QueryArg> query(static_cast<QueryArg*>(arg));
    // The channel is being destroyed (Shutdown or ~Impl): its waiters are answered.
    if (status == ARES_EDESTRUCTION) return;
    Impl* impl = query->impl;
    auto it = impl->waiting_.find(query->key);
    if (it == impl->waiting_.end()) return;
    std::vector<DnsCallback> callbacks = std::move(it->second);
    impl->waiting_.erase(it);
    const DnsRecords records =
        Interpret(query->type, status, abuf, alen, impl->options_.default_negative_ttl);
    for (DnsCallback& callback : callbacks) callback(records);
  }

  static void OnSocketState(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Impl*>(data)->SocketState(fd, readable != 0, writable != 0);
  }

  void SocketState(ares_socket_t fd, bool readable, bool writable) {
    auto it = watches_.find(fd);
    if (!readable && !writable) {
      if (it != watches_.end()) {
        // c-ares closes the fd right after this: stop watching it first, and never close
        // it ourselves (release, not close).
        it->second->closed = true;
        it->second->descriptor.release();
        watches_.erase(it);
      }
      return;
    }
    if (it == watches_.end()) {
      auto watch = std::make_shared<Watch>(io_, fd);
      std::error_code ec;
      watch->descriptor.assign(fd, ec);
      if (ec) return;  // cannot watch: the caller's deadline answers for it
      it = watches_.emplace(fd, std::move(watch)).first;
    }
    it->second->want_read = readable;
    it->second->want_write = writable;
    Arm(it->second);
  }

  void Arm(const std::shared_ptr<Watch>& watch) {
    if (watch->want_read && !watch->reading) {
      watch->reading = true;
      watch->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_read,
          asio::bind_executor(strand_, [self = shared_from_this(), watch](std::error_code ec) {
            watch->reading = false;
            if (ec || watch->closed || self->channel_ == nullptr || !watch->want_read) return;
            ares_process_fd(self->channel_, watch->fd, ARES_SOCKET_BAD);
            if (!watch->closed) self->Arm(watch);
            self->ArmServiceTimer();
          }));
    }
    if (watch->want_write && !watch->writing) {
      watch->writing = true;
      watch->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_write,
          asio::bind_executor(strand_, [self = shared_from_this(), watch](std::error_code ec) {
            watch->writing = false;
            if (ec || watch->closed || self->channel_ == nullptr || !watch->want_write) return;
            ares_process_fd(self->channel_, ARES_SOCKET_BAD, watch->fd);
            if (!watch->closed) self->Arm(watch);
            self->ArmServiceTimer();
          }));
    }
  }

  // c-ares keeps its own retransmission and timeout schedule; wake it when it is due.
  void ArmServiceTimer() {
    if (channel_ == nullptr) return;
    timeval storage{};
    timeval* due = ares_timeout(channel_, nullptr, &storage);
    if (due == nullptr) {
      service_timer_.cancel();
      return;
    }
    service_timer_.expires_after(std::chrono::seconds(due->tv_sec) +
                                 std::chrono::microseconds(due->tv_usec));
    service_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->channel_ == nullptr) return;
      ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      self->ArmServiceTimer();
    });
  }

  asio::io_context& io_;
  DnsStrand strand_;
  const DnsResolverOptions options_;
  ares_channel channel_ = nullptr;
  asio::steady_timer service_timer_;
  std::unordered_map<ares_socket_t, std::shared_ptr<Watch>> watches_;
  std::unordered_map<std::string, std::vector<DnsCallback>> waiting_;  // by name and type
};

Result<std::unique_ptr<DnsResolver>> DnsResolver::Create(asio::io_context& io,
                                                         const DnsResolverOptions& options) {
  if (options.query_timeout <= std::chrono::milliseconds(0)) {
    return Status::InvalidArgument("dns-timeout must be positive");
  }
  auto impl = std::make_shared<Impl>(io, options);
  Status status = impl->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<DnsResolver>(new DnsResolver(std::move(impl)));
}

DnsResolver::DnsResolver(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

DnsResolver::~DnsResolver() {
  asio::post(impl_->strand(), [impl = impl_] { impl->Shutdown(); });
}

bool DnsResolver::Query(const std::string& name, DnsType type, DnsCallback done) {
  return impl_->Query(name, type, std::move(done));
}

void DnsResolver::Shutdown() { impl_->Shutdown(); }

DnsStrand& DnsResolver::strand() { return impl_->strand(); }

}  // namespace greylight::reputation
