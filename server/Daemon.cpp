#include "server/Daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>

namespace bloch::server {

using grpc::Status;
using grpc::StatusCode;

namespace {

Status read_text_file(const std::string& path, const char* what, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status(StatusCode::INVALID_ARGUMENT,
                  std::string(what) + " '" + path + "' cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  *out = text.str();
  return Status::OK;
}

/// "host:port" → (host, port); the host may be a bracketed IPv6 address.
Status split_host_port(const std::string& address, std::string* host, unsigned short* port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return Status(StatusCode::INVALID_ARGUMENT, "admin address '" + address + "' is not host:port");
  }
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  try {
    const unsigned long value = std::stoul(address.substr(colon + 1));
    if (value > 65535) throw std::out_of_range("port");
    *port = static_cast<unsigned short>(value);
  } catch (const std::exception&) {
    return Status(StatusCode::INVALID_ARGUMENT, "admin address '" + address + "': bad port");
  }
  return Status::OK;
}

}  // namespace

Daemon::Daemon(ServerConfig config) : config_(std::move(config)) {}

Daemon::~Daemon() {
  stop();
}

Status Daemon::start() {
  CatalogOptions options;
  options.data_dir = config_.data_dir;
  options.max_collections = config_.max_collections;
  options.limits.max_batch = config_.max_batch;
  options.limits.max_k = config_.max_k;
  options.limits.max_queries = config_.max_queries;
  std::string token;
  try {
    token = resolve_token(config_);
  } catch (const std::exception& e) {
    return Status(StatusCode::INVALID_ARGUMENT, e.what());
  }
  Status s = Catalog::Open(options, &catalog_);
  if (!s.ok()) return s;
  service_ = std::make_unique<BlochService>(*catalog_, metrics_, token);

  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!config_.tls_cert.empty() || !config_.tls_key.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    s = read_text_file(config_.tls_cert, "tls_cert", &pair.cert_chain);
    if (s.ok()) s = read_text_file(config_.tls_key, "tls_key", &pair.private_key);
    if (!s.ok()) return s;
    ssl.pem_key_cert_pairs.push_back(std::move(pair));
    credentials = grpc::SslServerCredentials(ssl);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, credentials, &grpc_port_);
  builder.RegisterService(service_.get());
  const int max_bytes = int(std::min<uint64_t>(config_.max_message_mb, 2047) << 20);
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  // Idle sync-server threads re-check for shutdown at this period; gRPC's default makes every
  // shutdown wait seconds for them.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 100);
  server_ = builder.BuildAndStart();
  if (!server_ || grpc_port_ == 0) {
    return Status(StatusCode::UNAVAILABLE, "cannot serve gRPC on '" + config_.listen + "'");
  }
  server_->GetHealthCheckService()->SetServingStatus(true);

  if (!config_.admin_listen.empty()) {
    std::string host;
    unsigned short port = 0;
    s = split_host_port(config_.admin_listen, &host, &port);
    if (!s.ok()) return s;
    try {
      admin_ = std::make_unique<AdminHttp>(
          io_, host, port, [this](const std::string& target) { return admin(target); });
    } catch (const std::exception& e) {
      return Status(StatusCode::UNAVAILABLE,
                    "cannot serve admin HTTP on '" + config_.admin_listen + "': " + e.what());
    }
  }
  snapshot_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  schedule_snapshot();
  compaction_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  schedule_compaction();
  io_thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
  spdlog::info("serving gRPC on port {} ({}), admin HTTP on port {}", grpc_port_,
               config_.tls_cert.empty() ? "plaintext" : "TLS", admin_port());
  if (!config_.port_file.empty()) {
    std::ofstream out(config_.port_file + ".tmp");
    out << "grpc=" << grpc_port_ << " admin=" << admin_port() << "\n";
    out.close();
    std::rename((config_.port_file + ".tmp").c_str(), config_.port_file.c_str());
  }
  return Status::OK;
}

void Daemon::schedule_snapshot() {
  if (config_.snapshot_interval_s <= 0) return;
  snapshot_timer_->expires_after(
      std::chrono::milliseconds(int64_t(config_.snapshot_interval_s * 1000)));
  snapshot_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled by stop()
    // On the io thread: one snapshot pass at a time, and stop() waits for it (the admin
    // endpoint answers after the pass).
    catalog_->snapshot_all(/*wait=*/false);
    schedule_snapshot();
  });
}

void Daemon::schedule_compaction() {
  if (config_.compact_interval_s <= 0) return;
  compaction_timer_->expires_after(
      std::chrono::milliseconds(int64_t(config_.compact_interval_s * 1000)));
  compaction_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;  // cancelled by stop()
    if (!compaction_running_) {
      if (compaction_thread_.joinable()) compaction_thread_.join();  // the finished pass
      compaction_running_ = true;
      compaction_thread_ = std::thread([this] {
        catalog_->compact_all(config_.compact_dead_fraction, [this] { return !stopping_.load(); });
        compaction_running_ = false;
      });
    }
    schedule_compaction();
  });
}

AdminResponse Daemon::admin(const std::string& target) {
  if (target == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render(*catalog_)};
  }
  if (target == "/healthz") {
    std::lock_guard lock(stop_mutex_);
    if (stop_requested_) return {503, "text/plain; charset=utf-8", "shutting down\n"};
    return {200, "text/plain; charset=utf-8", "ok\n"};
  }
  return {404, "text/plain; charset=utf-8", "not found: try /metrics or /healthz\n"};
}

void Daemon::wait_for_signal() {
  boost::asio::signal_set signals(io_, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signal);
    request_stop();
  });
  std::unique_lock lock(stop_mutex_);
  stop_requested_cv_.wait(lock, [this] { return stop_requested_; });
  lock.unlock();
  signals.cancel();
}

void Daemon::request_stop() {
  std::lock_guard lock(stop_mutex_);
  stop_requested_ = true;
  stop_requested_cv_.notify_all();
}

void Daemon::stop() {
  {
    std::lock_guard lock(stop_mutex_);
    if (stopped_) return;
    stopped_ = true;
    stop_requested_ = true;
  }
  stopping_ = true;  // cancels a compaction pass in progress
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(int64_t(config_.shutdown_grace_s * 1000)));
    server_->Wait();
    spdlog::debug("gRPC drained");
  }
  boost::asio::post(io_, [this] {
    if (admin_) admin_->close();
    if (snapshot_timer_) snapshot_timer_->cancel();
    if (compaction_timer_) compaction_timer_->cancel();
    io_.stop();
  });
  if (io_thread_.joinable()) io_thread_.join();
  // The io thread, which starts compaction passes, is gone: no new one can begin.
  if (compaction_thread_.joinable()) compaction_thread_.join();
  spdlog::debug("io thread stopped");
  if (catalog_) catalog_->close();
  spdlog::info("stopped");
}

}  // namespace bloch::server
