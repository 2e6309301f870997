#pragma once

// blochd's settings. Each comes from, in decreasing precedence: a command-line flag, an
// environment variable, the TOML config file (--config / BLOCH_CONFIG), the default below.
// kServerSettings (ServerConfig.cpp) lists every setting with its flag, variable and key; it is
// what --help prints.

#include <cstdint>
#include <string>

namespace bloch::server {

struct ServerConfig {
  std::string data_dir = "./data";              ///< RocksDB (db/) and index snapshots (snapshots/)
  std::string listen = "127.0.0.1:50051";       ///< gRPC address (port 0: any free port)
  std::string admin_listen = "127.0.0.1:9090";  ///< admin HTTP /metrics and /healthz ("" = off)
  std::string tls_cert;             ///< PEM certificate chain; with tls_key, gRPC serves TLS only
  std::string tls_key;              ///< PEM private key
  std::string token_file;           ///< file holding the bearer token (first line)
  std::string token;                ///< bearer token itself (prefer token_file or the environment)
  uint64_t max_message_mb = 64;     ///< largest gRPC message accepted, MiB
  uint64_t max_batch = 10000;       ///< documents (or ids) per write batch
  uint64_t max_k = 1000;            ///< hits per query
  uint64_t max_queries = 1024;      ///< queries per search request
  uint64_t max_collections = 1000;  ///< collections per server
  double snapshot_interval_s = 30;  ///< seconds between checks for changed indexes to snapshot
  double shutdown_grace_s = 10;     ///< seconds in-flight RPCs get to finish on shutdown
  /// Seconds between compaction checks (0: never). A check compacts, one after the other, the
  /// collections whose index holds at least compact_dead_fraction dead entries (replaced or
  /// deleted documents), on a thread of its own: searches go on, writes wait for each one.
  double compact_interval_s = 600;
  double compact_dead_fraction = 0.25;  ///< dead entries / index entries that trigger compaction
  std::string log_level = "info";       ///< trace, debug, info, warn, error
  std::string port_file;  ///< when set, "grpc=<port> admin=<port>" is written here once serving
};

/// Parses flags, environment and config file into `config`. Returns false and sets `exit_code`
/// when the process should exit (after --help, or with a message on stderr for bad input).
bool parse_server_config(int argc, char** argv, ServerConfig* config, int* exit_code);

/// The bearer token the config names ("" for none); throws std::runtime_error if token_file
/// cannot be read or is empty.
std::string resolve_token(const ServerConfig& config);

}  // namespace bloch::server
