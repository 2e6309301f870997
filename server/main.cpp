// blochd: the bloch vector search service. `blochd --help` lists every setting.

#include <spdlog/spdlog.h>

#include "server/Daemon.h"
#include "server/ServerConfig.h"

int main(int argc, char** argv) {
  bloch::server::ServerConfig config;
  int exit_code = 0;
  if (!bloch::server::parse_server_config(argc, argv, &config, &exit_code)) return exit_code;
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  bloch::server::Daemon daemon(config);
  const grpc::Status status = daemon.start();
  if (!status.ok()) {
    spdlog::critical("cannot start: {}", status.error_message());
    return 1;
  }
  daemon.wait_for_signal();
  daemon.stop();
  return 0;
}
