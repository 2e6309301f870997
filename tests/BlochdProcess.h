#pragma once

// A real blochd process for tests: spawned on loopback with its own data directory, logs in
// <dir>/blochd.log, ports read from its --port-file; killed (SIGKILL) if still running at the end.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ServerTestKit.h"

extern char** environ;

namespace bloch::testing {

/// Runs `argv` (argv[0] is the program path) with stdout and stderr appended to `log` and, if
/// given, standard input read from `input`; extra `env` entries ("NAME=value") are added to this
/// process's environment. Returns the pid or -1.
inline pid_t spawn_logged(std::vector<std::string> args, const std::string& log,
                          const std::vector<std::string>& env = {}, const std::string& input = "") {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  environment.insert(environment.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 2, 1);
  if (!input.empty()) posix_spawn_file_actions_addopen(&actions, 0, input.c_str(), O_RDONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0].c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

/// One blochd process with its own data directory; killed (SIGKILL) if still running at the end.
class BlochdProcess {
 public:
  BlochdProcess(const ScratchDir& dir, std::vector<std::string> extra = {},
                std::vector<std::string> env = {})
      : port_file_(dir / "ports") {
    std::filesystem::remove(port_file_);
    std::vector<std::string> args = {BLOCHD_PATH,   "--data-dir",     dir / "data",  "--listen",
                                     "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--port-file",
                                     port_file_,    "--log-level",    "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = spawn_logged(std::move(args), dir / "blochd.log", env);
  }
  ~BlochdProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  /// Waits for the port file (the server is serving then); false if the process died first.
  bool wait_ready() {
    for (int i = 0; i < 600; ++i) {
      std::ifstream in(port_file_);
      std::string grpc;
      if (in >> grpc && grpc.starts_with("grpc=")) {
        port_ = std::stoi(grpc.substr(5));
        return true;
      }
      if (pid_ <= 0 || ::waitpid(pid_, &status_, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  /// Sends `signal` and waits for the exit; returns the wait status.
  int signal_and_wait(int signal) {
    ::kill(pid_, signal);
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
    return status_;
  }
  /// Waits for a process that exits by itself (e.g. on a bad setting); returns the wait status.
  int wait_exit() {
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
    return status_;
  }
  int port() const { return port_; }

 private:
  std::string port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  int status_ = 0;
};

}  // namespace bloch::testing
