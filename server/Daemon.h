#pragma once

// The blochd process around the gRPC server (DESIGN §4): a Boost.Asio io_context on its own
// thread owns the timers (periodic snapshots, compaction checks), the admin HTTP endpoint and,
// in the real process, the signals; gRPC serves on its own thread pool, compaction passes on a
// thread of their own. Tests run a Daemon in-process on port 0.
//
// Shutdown (stop(), or SIGINT/SIGTERM through wait_for_signal()): stop accepting RPCs, give
// in-flight ones shutdown_grace_s to finish, cancel training, write final snapshots, close the
// database.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "server/AdminHttp.h"
#include "server/BlochService.h"
#include "server/Catalog.h"
#include "server/Metrics.h"
#include "server/ServerConfig.h"

namespace bloch::server {

class Daemon {
 public:
  explicit Daemon(ServerConfig config);
  ~Daemon();

  /// Opens the data directory and starts serving; returns once both ports accept connections.
  grpc::Status start();
  int grpc_port() const { return grpc_port_; }
  /// 0 when the admin endpoint is off.
  int admin_port() const { return admin_ ? admin_->port() : 0; }
  Catalog& catalog() { return *catalog_; }

  /// Blocks until SIGINT or SIGTERM arrives (or request_stop() is called).
  void wait_for_signal();
  void request_stop();
  /// Graceful shutdown; idempotent.
  void stop();

 private:
  void schedule_snapshot();
  // Compaction runs on compaction_thread_, not the io thread: it re-encodes whole collections.
  // The timer starts a pass only when the previous one has finished.
  void schedule_compaction();
  AdminResponse admin(const std::string& target);

  ServerConfig config_;
  Metrics metrics_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<BlochService> service_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;

  boost::asio::io_context io_;
  std::unique_ptr<AdminHttp> admin_;
  std::unique_ptr<boost::asio::steady_timer> snapshot_timer_;
  std::unique_ptr<boost::asio::steady_timer> compaction_timer_;
  std::thread compaction_thread_;
  std::atomic<bool> compaction_running_{false};
  std::atomic<bool> stopping_{false};
  std::thread io_thread_;

  std::mutex stop_mutex_;
  std::condition_variable stop_requested_cv_;
  bool stop_requested_ = false;
  bool stopped_ = false;
};

}  // namespace bloch::server
