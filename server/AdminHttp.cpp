#include "server/AdminHttp.h"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

namespace bloch::server {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

/// One connection: read a request, write the handler's answer, close.
class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket socket, std::shared_ptr<AdminHandler> handler)
      : stream_(std::move(socket)), handler_(std::move(handler)) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->respond();
                     });
  }

 private:
  void respond() {
    AdminResponse answer;
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      answer = {405, "text/plain; charset=utf-8", "only GET is served here\n"};
    } else {
      answer = (*handler_)(std::string(request_.target()));
    }
    response_.version(request_.version());
    response_.result(answer.status);
    response_.set(http::field::server, "blochd");
    response_.set(http::field::content_type, answer.content_type);
    response_.keep_alive(false);
    response_.body() = std::move(answer.body);
    response_.prepare_payload();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  std::shared_ptr<AdminHandler> handler_;
};

}  // namespace

AdminHttp::AdminHttp(boost::asio::io_context& io, const std::string& host, unsigned short port,
                     AdminHandler handler)
    : acceptor_(io, tcp::endpoint(boost::asio::ip::make_address(host), port)),
      handler_(std::make_shared<AdminHandler>(std::move(handler))) {
  accept();
}

unsigned short AdminHttp::port() const {
  return acceptor_.local_endpoint().port();
}

void AdminHttp::close() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void AdminHttp::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;  // closed
    std::make_shared<AdminSession>(std::move(socket), handler_)->start();
    accept();
  });
}

}  // namespace bloch::server
