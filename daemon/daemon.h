// The running daemon: one control thread (health checks, admin endpoint,
// signals, VRRP) and N worker threads (listeners and sessions).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <memory>
#include <vector>

#include "cfg/config.h"
#include "health/checker.h"
#include "proxy/runtime.h"
#include "proxy/worker.h"

namespace daemon_ {

class AdminServer;

class Daemon {
 public:
  explicit Daemon(cfg::Config config);
  ~Daemon();

  // Binds everything (throws std::exception with a clear message on failure),
  // then runs until SIGTERM/SIGINT. Returns the exit code.
  int run();

  // For the admin endpoint (control thread only).
  const cfg::Config& config() const { return config_; }
  const std::vector<std::shared_ptr<proxy::ProxyRuntime>>& proxies() const { return proxies_; }
  const health::Status* check_status(size_t proxy, size_t backend) const;
  size_t pipes_in_use() const;

 private:
  void resolve_backends();
  void start_checks();
  void on_check_change(size_t proxy, size_t backend, const health::Status& st);
  void stop();

  cfg::Config config_;
  boost::asio::io_context control_{1};
  boost::asio::signal_set signals_;
  std::vector<std::shared_ptr<proxy::ProxyRuntime>> proxies_;
  std::vector<std::unique_ptr<proxy::Worker>> workers_;
  std::vector<std::vector<std::shared_ptr<health::Checker>>> checkers_;
  std::unique_ptr<AdminServer> admin_;
};

}  // namespace daemon_
