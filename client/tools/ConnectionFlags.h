#pragma once

// The flags every bloch command-line tool takes to reach the service, with their environment
// fallbacks: --address (BLOCH_ADDRESS), --token-file (BLOCH_TOKEN_FILE) or the BLOCH_TOKEN
// variable, --tls, --tls-ca, --timeout.

#include <CLI/CLI.hpp>
#include <string>

#include "bloch/Client.h"

namespace bloch::tools {

struct ConnectionFlags {
  std::string address = "127.0.0.1:50051";
  std::string token_file;
  bool tls = false;
  std::string tls_ca;
  double timeout_s = 60;
};

/// Adds the flags to `app` (defaults from the environment where set).
void add_connection_flags(CLI::App& app, ConnectionFlags& flags);
/// Client options for the flags; throws std::runtime_error if the token file is unreadable.
ClientOptions client_options(const ConnectionFlags& flags);

}  // namespace bloch::tools
