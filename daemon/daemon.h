// The running daemon: one control thread (health checks, admin endpoint,
// signals, VRRP) and N worker threads (listeners and sessions).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "cfg/config.h"
#include "health/checker.h"
#include "proxy/runtime.h"
#include "proxy/worker.h"

namespace vrrp {
class Service;
}

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
  const vrrp::Service* vrrp() const { return vrrp_.get(); }
  // track.proxies: the proxy exists, its workers listen and it has an
  // eligible backend (the one `first` uses, or any for the other balances).
  bool proxy_healthy(const std::string& name) const;

 private:
  void resolve_backends();
  void start_checks();
  void on_check_change(size_t proxy, size_t backend, const health::Status& st);
  void set_urgent(size_t proxy, bool urgent);
  void stop();
  // systemd Type=notify: READY=1 once listeners are bound and every backend
  // has had its first check (bounded), then WATCHDOG=1 pings if asked for.
  void notify_when_ready(std::chrono::steady_clock::time_point deadline);
  void watchdog_ping(std::chrono::microseconds period);
  // SIGHUP: validate the file again; a bad file is logged and the running
  // configuration stays.
  void wait_for_sighup();

  cfg::Config config_;
  boost::asio::io_context control_{1};
  boost::asio::signal_set signals_;
  std::vector<std::shared_ptr<proxy::ProxyRuntime>> proxies_;
  std::vector<std::unique_ptr<proxy::Worker>> workers_;
  std::vector<std::vector<std::shared_ptr<health::Checker>>> checkers_;
  std::unique_ptr<AdminServer> admin_;
  boost::asio::signal_set hup_{control_, SIGHUP};
  boost::asio::steady_timer ready_timer_{control_};
  boost::asio::steady_timer watchdog_timer_{control_};
  // Declared last: destroyed first, while control_ still exists.
  std::unique_ptr<vrrp::Service> vrrp_;
};

}  // namespace daemon_
