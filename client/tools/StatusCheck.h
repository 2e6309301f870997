#pragma once

// How the command-line tools end on a failed call: a ToolError carrying what was being done and
// the server's message (or the bare status code when the server gave none). main() prints it
// and exits non-zero.

#include <grpcpp/support/status.h>

#include <stdexcept>
#include <string>

namespace bloch::tools {

struct ToolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Throws ToolError("<what>: <message>") unless s is OK.
inline void check(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return;
  throw ToolError(what + ": " +
                  (s.error_message().empty() ? "gRPC status " + std::to_string(int(s.error_code()))
                                             : s.error_message()));
}

}  // namespace bloch::tools
