#pragma once

#include <asio.hpp>

#include <functional>
#include <memory>
#include <string>

#include "server/listen_address.h"
#include "util/status.h"

namespace greylight::server {

// A minimal HTTP/1.x endpoint serving GET /metrics (Prometheus text format) and nothing
// else. Each connection gets one response and is closed; requests are bounded in size and
// time so a scraper cannot hold resources.
class MetricsEndpoint {
 public:
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr std::chrono::seconds kRequestTimeout{5};

  // `render` produces the exposition text; it runs on the io_context thread.
  MetricsEndpoint(asio::io_context& io, ListenAddress address, std::function<std::string()> render);
  Status Bind();
  void Start();
  void Stop();
  unsigned short port() const;

 private:
  void Accept();
  const ListenAddress address_;
  std::function<std::string()> render_;
  asio::ip::tcp::acceptor acceptor_;
};

}  // namespace greylight::server
