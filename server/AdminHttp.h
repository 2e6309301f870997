#pragma once

// The admin HTTP endpoint (Boost.Beast on the daemon's io_context): GET /metrics (Prometheus
// text) and GET /healthz. One request per connection, answered from a handler callback;
// nothing here blocks the io_context.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

namespace bloch::server {

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// Maps a request target ("/metrics") to a response.
using AdminHandler = std::function<AdminResponse(const std::string& target)>;

class AdminHttp {
 public:
  /// Binds host:port (port 0 picks a free one); throws boost::system::system_error when the
  /// address cannot be bound.
  AdminHttp(boost::asio::io_context& io, const std::string& host, unsigned short port,
            AdminHandler handler);
  unsigned short port() const;
  /// Stops accepting (connections in flight finish).
  void close();

 private:
  void accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<AdminHandler> handler_;
};

}  // namespace bloch::server
