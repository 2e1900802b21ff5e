#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <csignal>
#include <thread>

#include "cfg/load.h"
#include "daemon/admin.h"
#include "daemon/privileges.h"

#ifdef VIPPROXY_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
static int sd_notify(int, const char*) { return 0; }
static int sd_watchdog_enabled(int, uint64_t*) { return 0; }
#endif
#include "vrrp/service.h"

namespace daemon_ {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

Daemon::Daemon(cfg::Config config) : config_(std::move(config)), signals_(control_) {}

Daemon::~Daemon() {
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
}

void Daemon::resolve_backends() {
  tcp::resolver resolver(control_);
  for (auto& p : proxies_) {
    for (auto& b : p->backends) {
      boost::system::error_code ec;
      auto res = resolver.resolve(b->cfg.address.host, std::to_string(b->cfg.address.port), ec);
      if (ec || res.empty())
        throw std::runtime_error("proxy " + p->cfg.name + ": backend " + b->cfg.name + ": cannot resolve '" +
                                 b->cfg.address.host + "': " + ec.message());
      b->endpoint = res.begin()->endpoint();
    }
  }
}

void Daemon::start_checks() {
  checkers_.resize(proxies_.size());
  // Spread every check of every proxy over one interval, so a node with many
  // backends does not fire them in lock-step.
  size_t total = 0, n = 0;
  for (auto& p : proxies_) total += p->backends.size();
  for (size_t pi = 0; pi < proxies_.size(); ++pi) {
    auto& p = *proxies_[pi];
    for (size_t bi = 0; bi < p.backends.size(); ++bi, ++n) {
      const auto& b = p.backends[bi]->cfg;
      cfg::Endpoint target = b.address;
      if (b.check_port) target.port = *b.check_port;
      else if (p.cfg.check.port) target.port = *p.cfg.check.port;
      auto first = std::chrono::milliseconds(p.cfg.check.interval.count() * static_cast<long>(n) /
                                             static_cast<long>(total ? total : 1));
      // The first round starts almost at once: the proxy is useless until
      // one check has passed, so only a small stagger (1/20 of the interval).
      first /= 20;
      auto checker = health::Checker::create(
          control_, p.cfg.check, p.cfg.name + "/" + b.name, target, first,
          [this, pi, bi](const health::Status& st) { on_check_change(pi, bi, st); });
      checkers_[pi].push_back(checker);
      checker->start();
    }
    set_urgent(pi, true);  // nothing is eligible before the first answers
  }
}

void Daemon::on_check_change(size_t pi, size_t bi, const health::Status& st) {
  auto& p = *proxies_[pi];
  p.backends[bi]->eligible.store(st.up, std::memory_order_release);

  std::vector<proxy::Candidate> cands;
  p.candidates(cands);
  size_t eligible = 0;
  for (auto& c : cands) eligible += c.eligible ? 1 : 0;
  if (p.cfg.balance == cfg::Balance::first) {
    size_t before = p.current.load();
    size_t after = proxy::elect_first(cands, before);
    p.current.store(after, std::memory_order_release);
    if (after != before) {
      if (after == proxy::npos)
        spdlog::error("proxy {}: no eligible backend; new connections wait up to {} ms", p.cfg.name,
                      p.cfg.queue_timeout.count());
      else
        spdlog::info("proxy {}: new sessions now go to {}", p.cfg.name, p.backends[after]->cfg.name);
    }
    if (eligible > 1) {
      std::string names;
      for (size_t i = 0; i < cands.size(); ++i)
        if (cands[i].eligible) names += (names.empty() ? "" : ", ") + p.backends[i]->cfg.name;
      spdlog::warn(
          "proxy {}: {} backends pass the check at once ({}): split brain or a stale node? staying on {}",
          p.cfg.name, eligible, names, p.backends[after]->cfg.name);
    }
  }
  for (auto& w : workers_) w->post_backend_change(pi, bi, st.up);
  set_urgent(pi, eligible == 0);
  if (vrrp_) vrrp_->proxy_health_changed();
}

bool Daemon::proxy_healthy(const std::string& name) const {
  for (const auto& p : proxies_) {
    if (p->cfg.name != name) continue;
    if (workers_.empty()) return false;
    for (const auto& b : p->backends)
      if (b->eligible.load(std::memory_order_acquire)) return true;
    // No eligible backend. If some node still answers its check (e.g. every
    // Patroni says 503 while a leader is being elected), the peer sees the
    // same: keep the VIP so clients reach us and queue. If none answers, this
    // node is cut off from the cluster: let the VIP go to the peer.
    size_t pi = static_cast<size_t>(&p - proxies_.data());
    for (size_t bi = 0; bi < p->backends.size(); ++bi)
      if (const auto* st = check_status(pi, bi); st && st->reachable) return true;
    return false;
  }
  return false;
}

void Daemon::set_urgent(size_t pi, bool urgent) {
  // With no eligible backend every check of the proxy speeds up and the
  // first node to answer 200 is taken at once: clients are waiting, and
  // there is no good backend that rise could protect.
  for (auto& c : checkers_[pi]) c->set_urgent(urgent);
}

const health::Status* Daemon::check_status(size_t proxy, size_t backend) const {
  if (proxy >= checkers_.size() || backend >= checkers_[proxy].size()) return nullptr;
  return &checkers_[proxy][backend]->status();
}

size_t Daemon::pipes_in_use() const {
  size_t n = 0;
  for (auto& w : workers_) n += w->pipes_in_use();
  return n;
}

void Daemon::notify_when_ready(std::chrono::steady_clock::time_point deadline) {
  bool all_checked = true;
  for (auto& c : checkers_)
    for (auto& ch : c) all_checked = all_checked && ch->status().checks > 0;
  if (all_checked || std::chrono::steady_clock::now() >= deadline) {
    size_t up = 0, total = 0;
    for (auto& p : proxies_)
      for (auto& b : p->backends) {
        ++total;
        up += b->eligible.load() ? 1 : 0;
      }
    std::string st = "STATUS=" + std::to_string(proxies_.size()) + " proxies, " + std::to_string(up) + "/" +
                     std::to_string(total) + " backends eligible";
    sd_notify(0, ("READY=1\n" + st).c_str());
    spdlog::info("ready: {}", st.substr(7));
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) watchdog_ping(std::chrono::microseconds(usec / 2));
    return;
  }
  ready_timer_.expires_after(std::chrono::milliseconds(20));
  ready_timer_.async_wait([this, deadline](const boost::system::error_code& e) {
    if (!e) notify_when_ready(deadline);
  });
}

void Daemon::watchdog_ping(std::chrono::microseconds period) {
  // Pinged from the control thread: a stuck control loop stops the pings.
  sd_notify(0, "WATCHDOG=1");
  watchdog_timer_.expires_after(period);
  watchdog_timer_.async_wait([this, period](const boost::system::error_code& e) {
    if (!e) watchdog_ping(period);
  });
}

void Daemon::wait_for_sighup() {
  hup_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    sd_notify(0, "RELOADING=1");
    try {
      (void)cfg::load_file(config_.source);
      // Applying a changed file in place (listeners, backends, checks, VRRP)
      // is not implemented yet: say so rather than pretend.
      spdlog::warn("SIGHUP: {} is valid; applying changes without a restart is not supported yet, "
                   "the running configuration stays (restart to apply)",
                   config_.source);
    } catch (const cfg::Error& e) {
      spdlog::error("SIGHUP: reload failed, keeping the running configuration: {}", e.what());
    }
    sd_notify(0, "READY=1");
    wait_for_sighup();
  });
}

void Daemon::stop() {
  hup_.cancel();
  spdlog::info("stopping");
  sd_notify(0, "STOPPING=1");
  ready_timer_.cancel();
  watchdog_timer_.cancel();
  for (auto& c : checkers_)
    for (auto& ch : c) ch->stop();
  if (admin_) admin_->stop();
  signals_.cancel();
  // Graceful: established sessions may finish within hard_stop_after.
  for (auto& w : workers_) w->drain(config_.hard_stop_after);
}

int Daemon::run() {
  unsigned n = config_.threads ? config_.threads : std::max(1u, std::thread::hardware_concurrency());
  for (auto& pc : config_.proxies) proxies_.push_back(std::make_shared<proxy::ProxyRuntime>(pc, n));
  resolve_backends();

  proxy::Worker::Hooks hooks;
  hooks.connect_failed = [this](size_t p, size_t b) {
    // Evidence of trouble: check now instead of at the next interval.
    asio::post(control_, [this, p, b] {
      if (p < checkers_.size() && b < checkers_[p].size()) checkers_[p][b]->check_now();
    });
  };
  if (!proxies_.empty()) {
    for (unsigned i = 0; i < n; ++i) {
      workers_.push_back(std::make_unique<proxy::Worker>(i, proxies_, hooks));
      workers_.back()->listen();
    }
  }
  if (config_.admin.enabled) {
    admin_ = std::make_unique<AdminServer>(control_, *this);
    admin_->listen();
  }

  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("received signal {}", sig);
    // VRRP first: as master it sends priority 0 and removes the VIPs, so the
    // peer takes over after Skew_Time while our workers drain.
    if (vrrp_) vrrp_->shutdown([this] { stop(); });
    else stop();
  });
  std::signal(SIGPIPE, SIG_IGN);
  wait_for_sighup();

  start_checks();
  if (!config_.vrrp.empty()) {
    vrrp_ = std::make_unique<vrrp::Service>(control_, config_.vrrp, config_.node,
                                            [this](const std::string& p) { return proxy_healthy(p); });
    vrrp_->start();
  }
  for (auto& w : workers_) w->start_thread();
  // systemd READY once every backend has had its first check; bounded: a
  // node whose checks all hang still reports ready after two check timeouts
  // (its backends simply are not eligible yet).
  cfg::Duration longest{0};
  for (auto& p : proxies_) longest = std::max(longest, p->cfg.check.timeout);
  notify_when_ready(std::chrono::steady_clock::now() + 2 * longest + std::chrono::milliseconds(500));
  for (auto& p : proxies_)
    spdlog::info("proxy {}: listening on {}:{} ({} backends, balance {}, {} threads)", p->cfg.name,
                 p->cfg.listen.host, p->cfg.listen.port, p->backends.size(),
                 p->cfg.balance == cfg::Balance::first        ? "first"
                 : p->cfg.balance == cfg::Balance::roundrobin ? "roundrobin"
                                                              : "leastconn",
                 n);

  privileges::drop_after_start(config_);  // listeners, admin and VRRP sockets are open
  control_.run();
  for (auto& w : workers_) w->join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace daemon_
