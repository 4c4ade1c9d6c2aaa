#include "server/metrics_endpoint.h"

#include <fmt/format.h>

#include "util/log.h"

namespace greylight::server {
namespace {

struct Exchange : std::enable_shared_from_this<Exchange> {
  Exchange(asio::ip::tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
  asio::ip::tcp::socket socket;
  asio::steady_timer timer;
  std::string request;
  std::string response;
};

std::string HttpResponse(std::string_view status, std::string_view content_type,
                         std::string_view body) {
  return fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
      status, content_type, body.size(), body);
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(asio::io_context& io, ListenAddress address,
                                 std::function<std::string()> render)
    : address_(std::move(address)), render_(std::move(render)), acceptor_(io) {}

Status MetricsEndpoint::Bind() {
  std::error_code ec;
  asio::ip::address ip = asio::ip::make_address(address_.host, ec);
  if (ec)
    return Status::InvalidArgument(fmt::format("--metrics-listen: bad address {}", address_.host));
  asio::ip::tcp::endpoint endpoint(ip, address_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && ip.is_v6()) acceptor_.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(64, ec);
  if (ec) {
    return Status::IoError(
        fmt::format("can't listen on {} for metrics: {}", address_.ToString(), ec.message()));
  }
  log::Notice("Serving metrics on http://{}/metrics", address_.ToString());
  return Status::Ok();
}

void MetricsEndpoint::Start() { Accept(); }

void MetricsEndpoint::Stop() {
  std::error_code ignored;
  acceptor_.close(ignored);
}

unsigned short MetricsEndpoint::port() const {
  std::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void MetricsEndpoint::Accept() {
  acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      auto exchange = std::make_shared<Exchange>(std::move(socket));
      exchange->timer.expires_after(kRequestTimeout);
      exchange->timer.async_wait([exchange](std::error_code timer_ec) {
        if (!timer_ec) {
          std::error_code ignored;
          exchange->socket.close(ignored);
        }
      });
      asio::async_read_until(
          exchange->socket, asio::dynamic_buffer(exchange->request, kMaxRequestBytes), "\r\n\r\n",
          [this, exchange](std::error_code read_ec, size_t) {
            if (read_ec) {
              exchange->timer.cancel();
              return;
            }
            std::string_view line(exchange->request);
            line = line.substr(0, line.find("\r\n"));
            if (line.starts_with("GET /metrics ") || line == "GET /metrics") {
              exchange->response =
                  HttpResponse("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_());
            } else {
              exchange->response = HttpResponse("404 Not Found", "text/plain", "see /metrics\n");
            }
            asio::async_write(exchange->socket, asio::buffer(exchange->response),
                              [exchange](std::error_code, size_t) {
                                exchange->timer.cancel();
                                std::error_code ignored;
                                exchange->socket.shutdown(asio::ip::tcp::socket::shutdown_both,
                                                          ignored);
                                exchange->socket.close(ignored);
                              });
          });
    }
    Accept();
  });
}

}  // namespace greylight::server
