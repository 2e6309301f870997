#include "server/ServerConfig.h"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <variant>

namespace bloch::server {

namespace {

using Field =
    std::variant<std::string ServerConfig::*, uint64_t ServerConfig::*, double ServerConfig::*>;

struct Setting {
  const char* flag;  // also the TOML key, with '-' as '_'
  const char* env;
  const char* help;
  Field field;
};

const Setting kServerSettings[] = {
    {"data-dir", "BLOCH_DATA_DIR", "data directory (RocksDB + snapshots)", &ServerConfig::data_dir},
    {"listen", "BLOCH_LISTEN", "gRPC listen address host:port", &ServerConfig::listen},
    {"admin-listen", "BLOCH_ADMIN_LISTEN", "admin HTTP host:port (/metrics, /healthz); empty: off",
     &ServerConfig::admin_listen},
    {"tls-cert", "BLOCH_TLS_CERT", "PEM certificate chain (with --tls-key: TLS only)",
     &ServerConfig::tls_cert},
    {"tls-key", "BLOCH_TLS_KEY", "PEM private key", &ServerConfig::tls_key},
    {"token-file", "BLOCH_TOKEN_FILE", "file whose first line is the bearer token every RPC needs",
     &ServerConfig::token_file},
    {"token", "BLOCH_TOKEN", "bearer token every RPC needs (prefer the file or the environment)",
     &ServerConfig::token},
    {"max-message-mb", "BLOCH_MAX_MESSAGE_MB", "largest gRPC message accepted, MiB",
     &ServerConfig::max_message_mb},
    {"max-batch", "BLOCH_MAX_BATCH", "documents or ids per write batch", &ServerConfig::max_batch},
    {"max-k", "BLOCH_MAX_K", "hits per query", &ServerConfig::max_k},
    {"max-queries", "BLOCH_MAX_QUERIES", "queries per search request", &ServerConfig::max_queries},
    {"max-collections", "BLOCH_MAX_COLLECTIONS", "collections per server",
     &ServerConfig::max_collections},
    {"snapshot-interval", "BLOCH_SNAPSHOT_INTERVAL", "seconds between index snapshot checks",
     &ServerConfig::snapshot_interval_s},
    {"shutdown-grace", "BLOCH_SHUTDOWN_GRACE", "seconds in-flight RPCs get on shutdown",
     &ServerConfig::shutdown_grace_s},
    {"compact-interval", "BLOCH_COMPACT_INTERVAL",
     "seconds between compaction checks (0: never compact on a timer)",
     &ServerConfig::compact_interval_s},
    {"compact-dead-fraction", "BLOCH_COMPACT_DEAD_FRACTION",
     "fraction of dead index entries (replaced/deleted documents) that triggers compaction",
     &ServerConfig::compact_dead_fraction},
    {"log-level", "BLOCH_LOG_LEVEL", "trace|debug|info|warn|error", &ServerConfig::log_level},
    {"port-file", "BLOCH_PORT_FILE", "write 'grpc=<port> admin=<port>' here once serving",
     &ServerConfig::port_file},
};

/// Sets a field from text, naming `source` in the error.
void assign(ServerConfig& config, const Setting& setting, const std::string& text,
            const std::string& source) {
  std::visit(
      [&](auto member) {
        using T = std::remove_reference_t<decltype(config.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          config.*member = text;
        } else {
          try {
            size_t used = 0;
            T value;
            if constexpr (std::is_same_v<T, double>) {
              value = std::stod(text, &used);
            } else {
              if (!text.empty() && text[0] == '-') throw std::invalid_argument("negative");
              value = std::stoull(text, &used);
            }
            if (used != text.size()) throw std::invalid_argument("trailing characters");
            config.*member = value;
          } catch (const std::exception&) {
            throw std::runtime_error(source + ": '" + text + "' is not a valid number");
          }
        }
      },
      setting.field);
}

/// A setting's default as --help shows it ("" when empty).
std::string default_text(const ServerConfig& config, const Setting& setting) {
  return std::visit(
      [&](auto member) {
        std::ostringstream out;
        out << config.*member;
        return out.str();
      },
      setting.field);
}

void apply_file(ServerConfig& config, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error("config file '" + path + "': " + std::string(e.description()) +
                             " (line " + std::to_string(e.source().begin.line) + ")");
  }
  for (const auto& [key, node] : table) {
    const Setting* setting = nullptr;
    for (const Setting& s : kServerSettings) {
      std::string name = s.flag;
      std::replace(name.begin(), name.end(), '-', '_');
      if (name == key.str()) setting = &s;
    }
    const std::string where = "config file '" + path + "': key '" + std::string(key.str()) + "'";
    if (setting == nullptr) throw std::runtime_error(where + " is not a setting");
    std::string text;
    if (node.is_string()) {
      text = *node.value<std::string>();
    } else if (node.is_integer()) {
      text = std::to_string(*node.value<int64_t>());
    } else if (node.is_floating_point()) {
      text = std::to_string(*node.value<double>());
    } else {
      throw std::runtime_error(where + " must be a string or a number");
    }
    assign(config, *setting, text, where);
  }
}

}  // namespace

bool parse_server_config(int argc, char** argv, ServerConfig* config, int* exit_code) {
  CLI::App app{
      "blochd: the bloch vector search service (gRPC). Every setting can also come from an "
      "environment variable or the TOML config file; flags win over the environment, which wins "
      "over the file."};
  std::string config_file;
  if (const char* env = std::getenv("BLOCH_CONFIG")) config_file = env;
  app.add_option("--config", config_file,
                 "TOML config file (env BLOCH_CONFIG); keys are the "
                 "flag names with '_' for '-'");
  std::vector<std::string> given(std::size(kServerSettings));
  std::vector<CLI::Option*> options;
  const ServerConfig defaults;
  for (size_t i = 0; i < std::size(kServerSettings); ++i) {
    const Setting& s = kServerSettings[i];
    const std::string fallback = default_text(defaults, s);
    options.push_back(app.add_option(std::string("--") + s.flag, given[i],
                                     std::string(s.help) + " (env " + s.env +
                                         (fallback.empty() ? ")" : "; default " + fallback + ")")));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return false;
  }
  try {
    if (!config_file.empty()) apply_file(*config, config_file);
    for (const Setting& s : kServerSettings) {
      if (const char* env = std::getenv(s.env)) assign(*config, s, env, std::string("$") + s.env);
    }
    for (size_t i = 0; i < options.size(); ++i) {
      if (options[i]->count() > 0) {
        assign(*config, kServerSettings[i], given[i], std::string("--") + kServerSettings[i].flag);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "blochd: " << e.what() << "\n";
    *exit_code = 2;
    return false;
  }
  return true;
}

std::string resolve_token(const ServerConfig& config) {
  if (config.token_file.empty()) return config.token;
  std::ifstream in(config.token_file);
  std::string token;
  if (!in || !std::getline(in, token)) {
    throw std::runtime_error("token file '" + config.token_file + "' cannot be read");
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) throw std::runtime_error("token file '" + config.token_file + "' is empty");
  return token;
}

}  // namespace bloch::server
