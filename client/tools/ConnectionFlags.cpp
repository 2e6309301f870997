#include "ConnectionFlags.h"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace bloch::tools {

void add_connection_flags(CLI::App& app, ConnectionFlags& flags) {
  if (const char* env = std::getenv("BLOCH_ADDRESS")) flags.address = env;
  if (const char* env = std::getenv("BLOCH_TOKEN_FILE")) flags.token_file = env;
  app.add_option("--address", flags.address, "blochd gRPC address host:port (env BLOCH_ADDRESS)")
      ->capture_default_str();
  app.add_option("--token-file", flags.token_file,
                 "file whose first line is the bearer token (env BLOCH_TOKEN_FILE; or put the "
                 "token itself in BLOCH_TOKEN)");
  app.add_flag("--tls", flags.tls, "connect with TLS");
  app.add_option("--tls-ca", flags.tls_ca, "PEM root certificates for --tls (default: system)");
  app.add_option("--timeout", flags.timeout_s, "seconds each call may take")->capture_default_str();
}

ClientOptions client_options(const ConnectionFlags& flags) {
  ClientOptions options;
  options.address = flags.address;
  options.tls = flags.tls || !flags.tls_ca.empty();
  options.tls_root_certs_file = flags.tls_ca;
  options.deadline = std::chrono::milliseconds(int64_t(flags.timeout_s * 1000));
  if (!flags.token_file.empty()) {
    std::ifstream in(flags.token_file);
    if (!in || !std::getline(in, options.token) || options.token.empty()) {
      throw std::runtime_error("token file '" + flags.token_file + "' cannot be read or is empty");
    }
  } else if (const char* env = std::getenv("BLOCH_TOKEN")) {
    options.token = env;
  }
  return options;
}

}  // namespace bloch::tools
