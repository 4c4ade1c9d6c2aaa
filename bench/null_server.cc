#include "bench/null_server.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <memory>
#include <thread>
#include <vector>

#include "bench/wire.h"

namespace greylight::bench {
namespace {

using Socket = asio::generic::stream_protocol::socket;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

constexpr std::string_view kReply = "action=dunno\n\n";
// Large enough that a burst of pipelined requests is read in one system call.
constexpr size_t kReadBufferBytes = 16 * 1024;
// Room for the replies to one full read buffer of the smallest possible requests, so the
// reply buffer grows at most a few times per connection.
constexpr size_t kInitialReplyReserve = 4096;
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

struct Counters {
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> requests{0};
};

// One client connection: read, count the requests that ended, write that many replies in
// one write, and read again only when the write is done, which keeps replies in order and
// pushes back on a client that sends faster than it reads. The buffers are allocated once
// per connection.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket socket, Counters& counters) : socket_(std::move(socket)), counters_(counters) {
    replies_.reserve(kInitialReplyReserve);
  }

  void Start() { Read(); }

 private:
  void Read() {
    socket_.async_read_some(asio::buffer(input_), [self = shared_from_this()](
                                                      const asio::error_code& error, size_t bytes) {
      self->OnRead(error, bytes);
    });
  }

  void OnRead(const asio::error_code& error, size_t bytes) {
    if (error) return;  // EOF or reset: dropping the last reference closes the socket.
    size_t ended = requests_.Feed(std::string_view(input_.data(), bytes));
    if (ended == 0) {
      Read();
      return;
    }
    counters_.requests.fetch_add(ended, std::memory_order_relaxed);
    replies_.clear();
    for (size_t i = 0; i < ended; ++i) replies_.append(kReply);
    asio::async_write(socket_, asio::buffer(replies_),
                      [self = shared_from_this()](const asio::error_code& error, size_t) {
                        if (!error) self->Read();
                      });
  }

  Socket socket_;
  Counters& counters_;
  RequestEndCounter requests_;
  std::array<char, kReadBufferBytes> input_;
  std::string replies_;
};

class NullServer {
 public:
  explicit NullServer(const NullServerOptions& options)
      : options_(options),
        contexts_(MakeContexts(options.threads)),
        acceptor_(*contexts_[0]),
        retry_timer_(*contexts_[0]),
        signals_(*contexts_[0], SIGINT, SIGTERM) {}

  bool Listen() {
    const Endpoint& listen = options_.listen;
    asio::error_code error;
    if (!listen.unix_path.empty()) {
      // A socket file left by an earlier run would make bind fail; remove only a socket.
      struct stat info;
      if (::lstat(listen.unix_path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode)) {
        ::unlink(listen.unix_path.c_str());
      }
    }
    acceptor_.open(listen.address.protocol(), error);
    if (!error && listen.unix_path.empty()) {
      acceptor_.set_option(asio::socket_base::reuse_address(true), error);
    }
    if (!error) acceptor_.bind(listen.address, error);
    if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
    if (error) {
      fmt::print(stderr, "greylight-bench: cannot listen on {}: {}\n", listen.text,
                 error.message());
      return false;
    }
    return true;
  }

  void Run() {
    Accept();
    signals_.async_wait([this](const asio::error_code& error, int) {
      if (!error) Stop();
    });
    // Threads other than the first have no work until a connection arrives; keep them alive.
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& context : contexts_) guards.push_back(asio::make_work_guard(*context));
    std::vector<std::thread> workers;
    for (size_t i = 1; i < contexts_.size(); ++i) {
      workers.emplace_back([context = contexts_[i].get()] { context->run(); });
    }
    fmt::print(stderr, "greylight-bench: null server listening on {} ({} thread{})\n",
               options_.listen.text, contexts_.size(), contexts_.size() == 1 ? "" : "s");
    contexts_[0]->run();
    for (std::thread& worker : workers) worker.join();
    if (!options_.listen.unix_path.empty()) ::unlink(options_.listen.unix_path.c_str());
    fmt::print(stderr, "greylight-bench: null server answered {} requests on {} connections\n",
               counters_.requests.load(), counters_.connections.load());
  }

 private:
  // One io_context per thread, each run by that thread alone (concurrency hint 1).
  static std::vector<std::unique_ptr<asio::io_context>> MakeContexts(int threads) {
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (int i = 0; i < std::max(1, threads); ++i) {
      contexts.push_back(std::make_unique<asio::io_context>(1));
    }
    return contexts;
  }

  void Accept() {
    // Connections are spread round-robin over the threads' io_contexts.
    asio::io_context& target = *contexts_[next_context_];
    next_context_ = (next_context_ + 1) % contexts_.size();
    acceptor_.async_accept(target, [this](const asio::error_code& error, Socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (error) {
        // Out of file descriptors, most likely: pause rather than spin.
        fmt::print(stderr, "greylight-bench: accept: {}\n", error.message());
        retry_timer_.expires_after(kAcceptRetryDelay);
        retry_timer_.async_wait([this](const asio::error_code& wait_error) {
          if (!wait_error) Accept();
        });
        return;
      }
      if (options_.listen.unix_path.empty()) {
        asio::error_code ignored;
        socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      }
      counters_.connections.fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Session>(std::move(socket), counters_)->Start();
      Accept();
    });
  }

  void Stop() {
    asio::error_code ignored;
    acceptor_.close(ignored);
    for (auto& context : contexts_) context->stop();
  }

  const NullServerOptions& options_;
  // Declared before the objects that use them, so they are destroyed last.
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  Acceptor acceptor_;
  asio::steady_timer retry_timer_;
  asio::signal_set signals_;
  size_t next_context_ = 0;
  Counters counters_;
};

}  // namespace

int RunNullServer(const NullServerOptions& options) {
  NullServer server(options);
  if (!server.Listen()) return 1;
  server.Run();
  return 0;
}

}  // namespace greylight::bench
