#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "cfg/diff.h"
#include "cfg/listen.h"
#include "cfg/load.h"
#include "cfg/names.h"
#include "daemon/admin.h"
#include "daemon/logging.h"
#include "daemon/privileges.h"
#include "daemon/realtime.h"
#include "daemon/vip_record.h"
#include "proxy/kernel_path.h"
#include "health/name_lookup.h"
#include "health/patroni_defects.h"

#include "vrrp/service.h"

namespace daemon_ {

unsigned usable_cpus() {
  // The CPUs this process may run on (systemd's CPUAffinity=, taskset, a
  // container's cpuset), as HAProxy counts them for nbthread: a worker per
  // core of the machine would put several on each allowed CPU.
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return unsigned(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void warn_if_secrets_readable(const cfg::Config& c) {
  bool secrets = !c.admin.token.empty();
  for (const auto& v : c.vrrp) secrets = secrets || !v.auth_password.empty();
  struct stat st {};
  if (secrets && ::stat(c.source.c_str(), &st) == 0 && (st.st_mode & S_IROTH))
    spdlog::warn("{} holds a password or token and is readable by every user (mode {:o}); "
                 "chmod o-r it (e.g. root:vipproxy 0640)",
                 c.source, st.st_mode & 07777);
}

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

void Daemon::override_data_path(cfg::Config& c) const {
  if (data_path_)
    for (auto& proxy : c.proxies) proxy.data_path = *data_path_;
}

Daemon::Daemon(cfg::Config config, std::optional<cfg::DataPath> data_path) : config_(std::move(config)), data_path_(data_path), signals_(control_) {
  override_data_path(config_);
}

Daemon::~Daemon() {
  // No lookup's thread may post to control_ any more (also when run() threw
  // before any stop()); destroying control_ would abandon them too.
  // Released here, not with the members: the lookup's timer must go before
  // control_ (declared after this function object, so destroyed first).
  if (auto cancel = std::exchange(cancel_reload_lookup_, nullptr)) cancel();
  health::name_lookups(control_).abandon_all();
  test_stall_released_ = true;
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
}

void Daemon::resolve_backends(const std::vector<std::shared_ptr<proxy::ProxyRuntime>>& proxies) {
  tcp::resolver resolver(control_);
  for (auto& p : proxies) {
    for (auto& b : p->backends) {
      if (b->endpoint.port() != 0) continue;  // carried over by a reload: resolved already
      boost::system::error_code ec;
      auto res = resolver.resolve(b->cfg.address.host, std::to_string(b->cfg.address.port), ec);
      if (ec || res.empty())
        throw std::runtime_error("proxy " + p->cfg.name + ": backend " + b->cfg.name + ": cannot resolve '" +
                                 b->cfg.address.host + "': " + ec.message());
      b->endpoint = res.begin()->endpoint();
    }
  }
}

namespace {

// Every descriptor open once the daemon has started (listeners, the admin
// endpoint, VRRP and netlink sockets, whatever a library opened) is made
// close-on-exec. The sites that open descriptors later set it themselves
// (proxy::set_cloexec, health/checker.cpp), and the spawner closes every
// descriptor above 2 in its children anyway (vrrp/spawn.cpp).
void cloexec_all_open_descriptors() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return;
  const int own = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == own) continue;
    if (int flags = ::fcntl(fd, F_GETFD); flags >= 0 && !(flags & FD_CLOEXEC))
      (void)::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
  ::closedir(d);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Where a backend's Patroni tells its version (its check host and port).
std::string patroni_url(const cfg::Proxy& p, size_t bi) {
  return std::string(p.check.tls.enabled ? "https://" : "http://") + cfg::check_target(p, bi).to_string() + "/patroni";
}

}  // namespace

// Where a backend's checks connect: the address its sessions go to (looked
// up at start or when a reload added it), so a check never judges another
// host than the one clients reach, and never waits for a name server.
boost::asio::ip::address Daemon::session_address(const proxy::BackendRuntime& b) { return b.endpoint.address(); }

std::shared_ptr<health::Checker> Daemon::make_checker(const proxy::ProxyRuntime& p, size_t bi,
                                                      std::chrono::milliseconds first_delay) {
  std::weak_ptr<proxy::BackendRuntime> backend = p.backends[bi];
  return health::Checker::create(control_, p.cfg.check, p.cfg.name + "/" + p.cfg.backends[bi].name,
                                 cfg::check_target(p.cfg, bi), session_address(*p.backends[bi]), first_delay,
                                 [this, backend](const health::Status& st) {
                                   if (auto b = backend.lock()) on_check_change(*b, st);
                                 });
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
      auto first = std::chrono::milliseconds(p.cfg.check.interval.count() * static_cast<long>(n) /
                                             static_cast<long>(total ? total : 1));
      // The first round starts almost at once: the proxy is useless until
      // one check has passed, so only a small stagger (1/20 of the interval).
      first /= 20;
      auto checker = make_checker(p, bi, first);
      checkers_[pi].push_back(checker);
      checker->start();
    }
    set_urgent(pi, true);  // nothing is eligible before the first answers
  }
}

void Daemon::read_patroni_version(const proxy::ProxyRuntime& p, size_t bi) {
  if (p.cfg.check.type != cfg::CheckType::http) return;
  const std::string url = patroni_url(p.cfg, bi);
  auto& read = patroni_versions_[url];
  if (read.in_flight) return;  // one request per Patroni, however many proxies check it
  read.in_flight = true;
  read.request = ++patroni_requests_;
  const std::string label = p.cfg.name + "/" + p.cfg.backends[bi].name;
  read.cancel = health::fetch_once(control_, p.cfg.check, cfg::check_target(p.cfg, bi),
                                   session_address(*p.backends[bi]), "/patroni", std::chrono::milliseconds(2000),
                                   [this, url, label, request = read.request](const health::CheckResult& r,
                                                                              const std::string& body) {
                                     on_patroni_version(url, request, label, r, body);
                                   });
}

// patroni_versions_ is by GET URL, and a reload that removes a backend or
// changes its check port or TLS leaves an URL no check asks any more: before,
// every URL ever configured stayed for the process's life, with its request
// (a read in flight, or the wait for the server's close) still going. The
// URLs of running backends with http checks stay, and those of removed
// backends while their check goes on (draining, hard_stop_after): the same
// node configured again later keeps what was logged of it meanwhile.
void Daemon::forget_removed_patroni_urls() {
  std::set<std::string> checked;
  for (const auto& p : proxies_)
    if (p->cfg.check.type == cfg::CheckType::http)
      for (size_t bi = 0; bi < p->backends.size(); ++bi) checked.insert(patroni_url(p->cfg, bi));
  for (const auto& d : draining_checks_)
    if (d.generation->cfg.check.type == cfg::CheckType::http) checked.insert(patroni_url(d.generation->cfg, d.backend));
  std::string names;
  size_t dropped = 0, orphaned = 0;
  for (auto it = patroni_versions_.begin(); it != patroni_versions_.end();) {
    if (checked.contains(it->first)) {
      ++it;
      continue;
    }
    auto& read = it->second;
    orphaned += read.in_flight && read.cancel ? 1 : 0;
    end_patroni_read(read.request, read.in_flight, read.cancel);
    names += (names.empty() ? "" : ", ") + it->first;
    ++dropped;
    it = patroni_versions_.erase(it);
  }
  if (dropped)
    spdlog::debug("Patroni version records of {} URL(s) no longer checked dropped ({}; {} read(s) in flight "
                  "left to finish); {} kept",
                  dropped, names, orphaned, patroni_versions_.size());
}

// Patroni's REST API does not say which DCS it uses, so a defect that needs
// one is named with that condition (doctor reads patroni.yml for it).
void Daemon::on_patroni_version(const std::string& url, uint64_t request, const std::string& label,
                                const health::CheckResult& r, const std::string& body) {
  // A reload dropped the URL (forget_removed_patroni_urls) while this read
  // was in flight (an orphan), or dropped it and a later one asked again:
  // not this reply's.
  if (reply_to_orphan(request)) return;
  auto it = patroni_versions_.find(url);
  if (it == patroni_versions_.end() || it->second.request != request) return;
  auto& read = it->second;
  read.in_flight = false;
  // read.cancel is kept: at stop it also ends the wait for a server that
  // does not close after its reply.
  const auto text = r.outcome == health::Outcome::ok ? health::patroni_version_from_status(body) : std::nullopt;
  const auto version = text ? health::parse_patroni_version(*text) : std::nullopt;
  if (!version) {
    const std::string why = r.outcome != health::Outcome::ok ? health::describe(r)
                            : text ? "version '" + *text + "' not understood"
                                   : std::string("no patroni.version in the reply");
    // Layer 4 (not up yet, most likely: at boot vipproxy may start first):
    // read again once its check reaches it. An HTTP answer without a version
    // (not Patroni?) is said once, until the node restarts.
    const bool answered = r.outcome != health::Outcome::none && !health::is_layer4(r.outcome) &&
                          r.outcome != health::Outcome::local_error;
    if (answered) read.known = true;
    if (read.logged == "?" + why) return;
    if (answered) read.logged = "?" + why;
    spdlog::info("backend {}: Patroni version not read (GET {}: {})", label, url, why);
    return;
  }
  read.known = true;
  if (read.logged == *text) return;
  read.logged = *text;
  const auto defects = health::write_loss_defects(*version, health::Dcs::unknown);
  if (defects.empty()) {
    spdlog::info("backend {}: Patroni {} (GET {}): no known defect that loses acknowledged writes", label, *text,
                 url);
    return;
  }
  for (const auto& d : defects)
    spdlog::warn("backend {}: {} (GET {}; `vipproxy doctor --patroni-config FILE` checks the DCS)", label,
                 health::describe(d, *version), url);
}

const proxy::ProxyRuntime* Daemon::running(const std::string& name) const {
  for (const auto& p : proxies_)
    if (p->cfg.name == name) return p.get();
  return nullptr;
}

bool Daemon::locate(const proxy::BackendRuntime& b, size_t& pi, size_t& bi) const {
  for (pi = 0; pi < proxies_.size(); ++pi)
    if ((bi = proxies_[pi]->index_of(&b)) != proxy::npos) return true;
  return false;
}

void Daemon::on_check_change(const proxy::BackendRuntime& backend, const health::Status& st) {
  size_t pi, bi;
  if (!locate(backend, pi, bi)) {
    // Removed by a reload: never eligible again, but its sessions drain, and
    // a node that stops passing its check gets them cut like any other.
    for (const auto& d : draining_checks_)
      if (d.generation->backends[d.backend].get() == &backend) {
        if (!st.up)
          for (auto& w : workers_) w->post_backend_change(d.generation, d.backend, false);
        break;
      }
    return;
  }
  auto& p = *proxies_[pi];
  p.backends[bi]->eligible.store(st.up, std::memory_order_release);
  elect(pi);
  if (stopping_) {
    // Draining after SIGTERM: only the cut matters now.
    for (auto& w : workers_) w->post_backend_change(proxies_[pi], bi, st.up);
    return;
  }
  if (p.cfg.check.type == cfg::CheckType::http) {
    auto& read = patroni_versions_[patroni_url(p.cfg, bi)];
    if (!st.reachable) read.known = false;  // it may come back as another version (an upgrade)
    else if (!read.known) read_patroni_version(p, bi);
  }
  for (auto& w : workers_) w->post_backend_change(proxies_[pi], bi, st.up);
  if (vrrp_) vrrp_->proxy_health_changed();
}

void Daemon::record_vips() {
  if (vip_record_path_.empty()) return;
  if (std::string why = vip_record::write(vip_record_path_, config_); !why.empty())
    spdlog::warn("cannot record the VIPs for the unit's clean-up (ExecStopPost: vipproxy release-vips): {}; a "
                 "VIP left by an unclean exit then stays until the next start",
                 why);
}

// A backend that passes its check but refuses (or drops) the proxy's
// connects stays eligible (see README, check.fast_interval): its Patroni
// says it is the primary, no other backend is, and clients retry it until
// queue_timeout. That the failure is there to see is what an operator needs:
// before, it was only a debug line and a counter, and every client of the
// proxy waited and was closed with nothing in the log. Said once the
// failures have lasted kConnectFailuresQuiet (a switchover's or a crash's
// old primary refuses for a moment, until its check, 100 ms apart then,
// takes it out: not news), then at most once per 10 s with the count since.
void Daemon::warn_connect_failed(const proxy::ProxyRuntime& p, const proxy::BackendRuntime& b, int error) {
  constexpr auto kConnectFailuresQuiet = std::chrono::seconds(2);
  constexpr auto kEpisodeGap = std::chrono::seconds(10);  // a pause this long starts a new episode
  if (!b.eligible.load(std::memory_order_acquire)) return;  // the check already says it
  auto& f = connect_failures_[p.cfg.name + "/" + b.cfg.name];
  const auto now = std::chrono::steady_clock::now();
  if (!f.episode || now - f.last > kEpisodeGap) {
    f.episode = now;
    f.logged.reset();
    f.since = 0;
  }
  f.last = now;
  ++f.since;
  if (now - *f.episode < kConnectFailuresQuiet) return;
  if (f.logged && now - *f.logged < std::chrono::seconds(10)) return;
  const std::string why = error == ETIMEDOUT ? "connect timed out (connect_timeout)"
                          : error == ECONNREFUSED ? "connection refused"
                                                  : std::system_category().message(error);
  spdlog::warn("proxy {}: backend {} ({}) passes its check but its connects fail: {} ({} failed connect{}{}); "
               "clients wait up to queue_timeout",
               p.cfg.name, b.cfg.name, b.endpoint.address().to_string() + ":" + std::to_string(b.endpoint.port()),
               why, f.since, f.since == 1 ? "" : "s",
               " in " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                           now - (f.logged ? *f.logged : *f.episode)).count()) + " s");
  f.logged = now;
  f.since = 0;
}

void Daemon::elect(size_t pi) {
  auto& p = *proxies_[pi];

  std::vector<proxy::Candidate> cands;
  p.candidates(cands);
  size_t eligible = 0;
  for (auto& c : cands) eligible += c.eligible ? 1 : 0;
  if (p.cfg.balance == cfg::Balance::first) {
    std::vector<std::string> passing;
    for (size_t i = 0; i < cands.size(); ++i)
      if (cands[i].eligible) passing.push_back(p.backends[i]->cfg.name);
    auto& watch = overlaps_[p.cfg.name];  // by name: it outlives reloads
    const auto before_overlap = watch.names();
    const auto event = watch.update(passing);
    // Each backend of a new overlap (or of a new set of them) has its
    // timeline read again: one read before it is stale. So does an overlap
    // whose backends a reload moved (forget_changed_timelines).
    if (event == proxy::OverlapWatch::Event::started || event == proxy::OverlapWatch::Event::changed) {
      overlap_timelines_[p.cfg.name].logged.clear();
      read_timelines(p);
    } else if (event == proxy::OverlapWatch::Event::ended) {
      if (auto it = overlap_timelines_.find(p.cfg.name); it != overlap_timelines_.end()) {
        cancel_timeline_reads(it->second);
        overlap_timelines_.erase(it);
      }
    } else if (!watch.names().empty() && overlap_timelines_[p.cfg.name].backends.empty()) {
      read_timelines(p);
    }
    std::vector<std::optional<uint64_t>> timelines(cands.size());
    if (auto it = overlap_timelines_.find(p.cfg.name); it != overlap_timelines_.end())
      for (size_t i = 0; i < cands.size(); ++i)
        if (auto b = it->second.backends.find(p.backends[i]->cfg.name); b != it->second.backends.end())
          timelines[i] = b->second.timeline;

    size_t before = p.current.load();
    const size_t today = proxy::elect_first(cands, before);
    size_t after = proxy::elect_first_by_timeline(cands, timelines, before);
    p.current.store(after, std::memory_order_release);
    if (after != before) {
      if (after == proxy::npos) {
        spdlog::error("proxy {}: no eligible backend; new connections wait up to {} ms", p.cfg.name,
                      p.cfg.queue_timeout.count());
      } else if (after != today) {
        // Sessions already on the other node stay (cut when its check fails).
        std::string others;
        for (size_t i = 0; i < cands.size(); ++i)
          if (cands[i].eligible && i != after)
            others += ", " + p.backends[i]->cfg.name + " on " + std::to_string(*timelines[i]);
        spdlog::warn("proxy {}: {} is on timeline {}{}: new sessions now go to {}", p.cfg.name,
                     p.backends[after]->cfg.name, *timelines[after], others, p.backends[after]->cfg.name);
      } else {
        spdlog::info("proxy {}: new sessions now go to {}", p.cfg.name, p.backends[after]->cfg.name);
      }
    }
    switch (event) {
      case proxy::OverlapWatch::Event::none: break;
      case proxy::OverlapWatch::Event::started:
      case proxy::OverlapWatch::Event::changed:
        spdlog::warn(
            "proxy {}: {} backends pass the check at once ({}): split brain or a stale node? staying on {}{}",
            p.cfg.name, eligible, join(watch.names()), p.backends[after]->cfg.name,
            p.cfg.check.type == cfg::CheckType::http ? " until their timelines are read (GET /patroni)" : "");
        break;
      case proxy::OverlapWatch::Event::ended:
        spdlog::info("proxy {}: backends no longer pass the check at once ({} before, {} now)", p.cfg.name,
                     join(before_overlap), passing.empty() ? "none" : join(passing));
        break;
    }
  }
  set_urgent(pi, eligible == 0);
}

void Daemon::end_patroni_read(uint64_t request, bool in_flight, std::function<void()>& cancel) {
  if (!cancel) return;
  if (in_flight && !stopping_)
    patroni_orphans_.emplace(request, std::exchange(cancel, nullptr));
  else
    std::exchange(cancel, nullptr)();
}

bool Daemon::reply_to_orphan(uint64_t request) {
  auto o = patroni_orphans_.find(request);
  if (o == patroni_orphans_.end()) return false;
  auto cancel = std::move(o->second);
  patroni_orphans_.erase(o);
  if (cancel) cancel();  // after the reply: closes only what the server left open
  return true;
}

void Daemon::cancel_timeline_reads(OverlapTimelines& t) {
  for (auto& [name, read] : t.backends) {
    end_patroni_read(read.request, read.in_flight, read.cancel);
    if (read.again) read.again->cancel();
  }
  t.backends.clear();
}

std::string Daemon::timeline_source(const proxy::ProxyRuntime& p, size_t bi) {
  return patroni_url(p.cfg, bi) + " at " + session_address(*p.backends[bi]).to_string();
}

void Daemon::forget_changed_timelines() {
  for (auto it = overlap_timelines_.begin(); it != overlap_timelines_.end();) {
    const proxy::ProxyRuntime* p = running(it->first);
    bool same = p && p->cfg.check.type == cfg::CheckType::http;
    for (const auto& [name, read] : it->second.backends) {
      if (!same) break;
      size_t bi = 0;
      while (bi < p->backends.size() && p->backends[bi]->cfg.name != name) ++bi;
      same = bi < p->backends.size() && timeline_source(*p, bi) == read.source;
    }
    if (!same) cancel_timeline_reads(it->second);
    it = p ? std::next(it) : overlap_timelines_.erase(it);
  }
}

// One GET /patroni per backend of the overlap, like read_patroni_version's
// (its check's host, port, TLS and timeout, at least 2 s). Not at stop: the
// election then only cuts sessions.
void Daemon::read_timelines(const proxy::ProxyRuntime& p) {
  auto& t = overlap_timelines_[p.cfg.name];
  cancel_timeline_reads(t);
  if (stopping_ || p.cfg.check.type != cfg::CheckType::http) return;
  for (const auto& name : overlaps_[p.cfg.name].names()) {
    size_t bi = 0;
    while (bi < p.backends.size() && p.backends[bi]->cfg.name != name) ++bi;
    if (bi < p.backends.size()) read_timeline(p, bi, t);
  }
}

void Daemon::read_timeline(const proxy::ProxyRuntime& p, size_t bi, OverlapTimelines& t) {
  const std::string& name = p.backends[bi]->cfg.name;
  auto& read = t.backends[name];
  // The previous read has ended (one in flight per backend); its cancel now
  // only closes a connection the server left open after its reply.
  if (read.cancel) read.cancel();
  read.source = timeline_source(p, bi);
  read.in_flight = true;
  read.request = ++patroni_requests_;
  read.cancel = health::fetch_once(
      control_, p.cfg.check, cfg::check_target(p.cfg, bi), session_address(*p.backends[bi]), "/patroni",
      std::chrono::milliseconds(2000),
      [this, proxy = p.cfg.name, name, request = read.request](const health::CheckResult& r,
                                                               const std::string& body) {
        on_timeline(proxy, name, request, r, body);
      });
}

void Daemon::schedule_timeline_read(const std::string& proxy_name, const std::string& backend, TimelineRead& read,
                                    std::chrono::milliseconds after) {
  if (stopping_) return;
  if (!read.again) read.again = std::make_shared<boost::asio::steady_timer>(control_);
  read.again->expires_after(after);
  // By name and request number: a reload, the overlap's end or another read
  // since makes this one moot.
  read.again->async_wait([this, proxy_name, backend, request = read.request](boost::system::error_code ec) {
    if (ec || stopping_) return;
    auto t = overlap_timelines_.find(proxy_name);
    if (t == overlap_timelines_.end()) return;
    auto it = t->second.backends.find(backend);
    if (it == t->second.backends.end() || it->second.request != request || it->second.in_flight) return;
    const proxy::ProxyRuntime* p = running(proxy_name);
    if (!p || p->cfg.check.type != cfg::CheckType::http) return;
    for (size_t bi = 0; bi < p->backends.size(); ++bi)
      if (p->backends[bi]->cfg.name == backend) return read_timeline(*p, bi, t->second);
  });
}

void Daemon::on_timeline(const std::string& proxy_name, const std::string& backend, uint64_t request,
                         const health::CheckResult& r, const std::string& body) {
  // The overlap ended or changed, a reload or the stop cancelled the read:
  // not this reply's.
  if (reply_to_orphan(request)) return;
  auto t = overlap_timelines_.find(proxy_name);
  if (t == overlap_timelines_.end()) return;
  auto it = t->second.backends.find(backend);
  if (it == t->second.backends.end() || it->second.request != request) return;
  auto& read = it->second;
  read.in_flight = false;
  // read.cancel is kept: it also ends the wait for a server that does not
  // close after its reply.
  if (r.outcome == health::Outcome::ok) {
    read.timeline = health::primary_timeline_from_status(body, read.why);
  } else {
    read.timeline.reset();
    read.why = health::describe(r);
  }
  size_t pi = 0;
  while (pi < proxies_.size() && proxies_[pi]->cfg.name != proxy_name) ++pi;
  if (pi == proxies_.size()) return;
  // A failed read is tried again while the overlap lasts: a Patroni that was
  // busy or timed out at the overlap's start answers later, and new sessions
  // can still move to the newer timeline. A good one is read again, slowly:
  // a node promoted once more during the overlap is seen.
  if (read.timeline) {
    read.failures = 0;
    schedule_timeline_read(proxy_name, backend, read, proxy::timeline_reread_after(proxies_[pi]->cfg.check.interval));
  } else {
    ++read.failures;
    schedule_timeline_read(proxy_name, backend, read,
                           proxy::timeline_retry_after(proxies_[pi]->cfg.check.interval, read.failures));
  }
  const size_t before = proxies_[pi]->current.load();
  elect(pi);  // may move new sessions (and says so)
  // Once every read has ended: what they said, when new sessions did not
  // move (a move was just logged by elect()). Said once per overlap, and
  // again only if it differs (a reload that moved a backend reads again).
  t = overlap_timelines_.find(proxy_name);
  if (t == overlap_timelines_.end()) return;
  std::string summary;
  bool unread = false;
  for (const auto& [name, rd] : t->second.backends) {
    if (rd.in_flight) return;
    summary += (summary.empty() ? "" : ", ") + name +
               (rd.timeline ? " on timeline " + std::to_string(*rd.timeline) : " not read (" + rd.why + ")");
    unread = unread || !rd.timeline;
  }
  const size_t after = proxies_[pi]->current.load();
  if (summary.empty() || summary == t->second.logged) return;
  t->second.logged = summary;
  if (after != before || after == proxy::npos) return;
  const auto& p = *proxies_[pi];
  if (unread)
    spdlog::warn("proxy {}: {}: new sessions stay on {}", p.cfg.name, summary, p.backends[after]->cfg.name);
  else
    spdlog::info("proxy {}: {}: new sessions stay on {}", p.cfg.name, summary, p.backends[after]->cfg.name);
}

std::optional<bool> Daemon::proxy_healthy(const std::string& name) const {
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
    bool answered = false;
    for (size_t bi = 0; bi < p->backends.size(); ++bi) {
      const auto* st = check_status(pi, bi);
      if (st && st->reachable) return true;
      // A check not even run (local_error: no socket, no address) ends
      // the wait too: this proxy cannot serve, whatever its backends.
      answered = answered || (st && (st->checks > 0 || st->last.outcome != health::Outcome::none));
    }
    // No check has ended yet: not known (a proxy just added by a reload).
    return answered ? std::optional<bool>(false) : std::nullopt;
  }
  // Not running (yet): a reload commits the VRRP instances before the
  // proxies it adds (the file's cross-checks guarantee the name exists).
  // Not known either; at start the engine counts that as unhealthy.
  return std::nullopt;
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

std::optional<Daemon::OverlapTimeline> Daemon::overlap_timeline(size_t proxy, size_t backend) const {
  if (proxy >= proxies_.size() || backend >= proxies_[proxy]->backends.size()) return std::nullopt;
  auto t = overlap_timelines_.find(proxies_[proxy]->cfg.name);
  if (t == overlap_timelines_.end()) return std::nullopt;
  auto it = t->second.backends.find(proxies_[proxy]->backends[backend]->cfg.name);
  if (it == t->second.backends.end()) return std::nullopt;
  OverlapTimeline o;
  o.reading = it->second.in_flight;
  o.timeline = it->second.timeline;
  if (!o.timeline) o.error = it->second.why;
  return o;
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
    notify_state("READY=1\n" + st);
    ready_sent_ = true;
    spdlog::info("ready: {}", st.substr(7));
    // The workers' heartbeats go out with or without systemd's watchdog:
    // without, a stuck worker is logged and shown (/status, /metrics), and
    // nothing is stopped or restarted (daemon/worker_watch.h).
    worker_watch_ = WorkerWatch(workers_.size());
    if (auto period = watchdog_period(std::getenv("WATCHDOG_USEC"), std::getenv("WATCHDOG_PID"), ::getpid()))
      watch_workers(*period / 2, true);
    else if (!workers_.empty())
      watch_workers(kWorkerWatchPeriod, false);
    return;
  }
  ready_timer_.expires_after(std::chrono::milliseconds(20));
  ready_timer_.async_wait([this, deadline](const boost::system::error_code& e) {
    if (!e && !stopping_) notify_when_ready(deadline);
  });
}

void Daemon::watch_realtime_guard() {
  if (realtime::dropped()) {
    spdlog::error("control thread: ran {} ms without sleeping under SCHED_RR; back on the normal scheduler until "
                  "restarted (RLIMIT_RTTIME guard of vrrp_rt_priority)",
                  realtime::kRtTimeLimit.count());
    return;
  }
  realtime_timer_.expires_after(std::chrono::seconds(1));
  realtime_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e && !stopping_) watch_realtime_guard();
  });
}

void Daemon::flush_log_every_second() {
  logging::flush_pending();
  log_flush_timer_.expires_after(std::chrono::seconds(1));
  log_flush_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e && !stopping_) flush_log_every_second();
  });
}

void Daemon::watch_workers(std::chrono::microseconds period, bool systemd) {
  // Pinged from the control thread: a stuck control loop stops the pings.
  // So does a stuck worker: each must have run the heartbeat posted at the
  // previous ping (daemon/worker_watch.h). Before, a worker stuck in a
  // handler left its clients hanging, and SO_REUSEPORT kept sending it new
  // ones, while systemd saw a healthy daemon. Without systemd's watchdog the
  // heartbeats were not even posted: nothing told of a stuck worker at all.
  const auto now = std::chrono::steady_clock::now();
  std::vector<uint64_t> answered;
  answered.reserve(workers_.size());
  for (auto& w : workers_) answered.push_back(w->heartbeat());
  // `period` is half of WatchdogSec (the limit the unit's watchdog allows
  // between pings), or kWorkerWatchPeriod: a time a loop that turns every
  // few milliseconds, however busy, cannot miss by accident.
  for (const auto& c : worker_watch_.update(answered, now, period)) {
    if (c.stuck && systemd) {
      // For good, also if it turns again: whatever stopped it may again, and
      // systemd aborts the daemon (core dump: where it was stuck) within
      // WatchdogSec; Restart=on-failure starts it again and the unit's
      // ExecStopPost releases its VIPs.
      spdlog::error("worker {}: its event loop has not turned for {} ms (stuck in a handler or a call that does "
                    "not return; its clients hang): no more systemd watchdog pings, systemd restarts the service",
                    c.worker, c.for_.count());
      watchdog_stopped_ = true;
    } else if (c.stuck) {
      spdlog::error("worker {}: its event loop has not turned for {} ms (stuck in a handler or a call that does "
                    "not return; its clients hang): no systemd watchdog (WatchdogSec=) restarts the daemon; "
                    "restart it (/status workers.stuck, vipproxy_workers_stuck)",
                    c.worker, c.for_.count());
    } else {
      spdlog::warn("worker {}: its event loop turns again (it had not for {} ms or more){}", c.worker,
                   c.for_.count(), watchdog_stopped_ ? "; the systemd watchdog pings stay stopped" : "");
    }
  }
  for (size_t i = 0; i < workers_.size(); ++i)
    if (worker_watch_.due(i, answered)) workers_[i]->post_heartbeat(worker_watch_.sent(i, now));
  if (systemd && !watchdog_stopped_) notifier_->ping();
  watchdog_timer_.expires_after(period);
  watchdog_timer_.async_wait([this, period, systemd](const boost::system::error_code& e) {
    if (!e && !stopping_) watch_workers(period, systemd);
  });
}

void Daemon::notify_state(std::string message) {
  const bool was_waiting = notifier_->waiting() > 0;
  notifier_->state(std::move(message));
  if (notifier_->waiting() == 0 || notify_retrying_) return;
  if (!was_waiting)
    spdlog::warn("systemd's notify socket is full (the service manager is not reading it): the notification waits "
                 "and is sent again every 100 ms; nothing else waits for it");
  retry_notifications();
}

void Daemon::retry_notifications() {
  notify_retrying_ = true;
  notify_retry_timer_.expires_after(std::chrono::milliseconds(100));
  notify_retry_timer_.async_wait([this](const boost::system::error_code& e) {
    if (e || stopping_) {
      notify_retrying_ = false;
      return;
    }
    if (notifier_->retry()) {
      retry_notifications();
      return;
    }
    notify_retrying_ = false;
    spdlog::info("systemd's notify socket takes notifications again: the waiting ones are sent");
  });
}

void Daemon::wait_for_sighup() {
  hup_.async_wait([this](const boost::system::error_code& ec, int) {
    // stopping_: SIGTERM's handler ran first. stop() cancelled the wait, but
    // a wait already completed (both signals taken in one turn of the loop)
    // is not cancelled, and the reload ran during the stop: proxies added
    // while draining, RELOADING=1/READY=1 after STOPPING=1, a VRRP instance
    // launched after priority 0 that kept the daemon alive
    // (tests/integration/test_hup_at_stop.py). With VRRP, stop() is posted
    // after the instances' shutdown: the SIGHUP ran in between, on stopped
    // instances (test_hup_at_stop_netns.py), hence stop_requested_.
    if (ec || stop_requested_ || stopping_) return;
    // A SIGHUP before the first READY (one held while the file was read,
    // main.cpp) is applied without telling systemd: its READY=1 would say
    // "started" before the first check round (notify_when_ready()).
    const bool tell = ready_sent_;
    if (tell) notify_state("RELOADING=1");
    reload([this, tell](const std::string& error) {
      if (error.empty()) {
        ++reloads_.applied;
      } else {
        ++reloads_.failed;
        spdlog::error("SIGHUP: reload failed, keeping the running configuration: {}", error);
      }
      if (tell) notify_state("READY=1");
      if (!stopping_) wait_for_sighup();
    });
  });
}

void Daemon::ignore_sigusr() {
  usr_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec || stop_requested_ || stopping_) return;  // as wait_for_sighup(): completed before stop() cancelled it
    if (test_stall_worker_ && sig == SIGUSR1 && *test_stall_worker_ < workers_.size()) {
      // Tests only (VIPPROXY_TEST_STALL_WORKER): the worker's loop blocks,
      // as in a handler that never returns, until SIGUSR2 or the daemon stops.
      spdlog::warn("SIGUSR1: worker {} blocks until SIGUSR2 or the daemon stops (VIPPROXY_TEST_STALL_WORKER, tests "
                   "only)",
                   *test_stall_worker_);
      test_stall_released_ = false;
      workers_[*test_stall_worker_]->loop().post([this] {
        while (!test_stall_released_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      });
      ignore_sigusr();
      return;
    }
    if (test_stall_worker_ && sig == SIGUSR2) {
      spdlog::warn("SIGUSR2: the blocked worker is released (VIPPROXY_TEST_STALL_WORKER, tests only)");
      test_stall_released_ = true;
      ignore_sigusr();
      return;
    }
    spdlog::warn("{} ignored: vipproxy has no data or stats dump (GET /status on the admin endpoint), nor "
                 "HAProxy's soft stop or reload; SIGTERM stops it, SIGHUP reloads it",
                 sig == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
    if (!stopping_) ignore_sigusr();
  });
}

void Daemon::stop() {
  stopping_ = true;
  test_stall_released_ = true;  // the worker drains and ends
  hup_.cancel();
  usr_.cancel();
  spdlog::info("stopping");
  notify_state("STOPPING=1");
  notify_retry_timer_.cancel();  // what waits gets a last second at exit (run())
  ready_timer_.cancel();
  watchdog_timer_.cancel();
  realtime_timer_.cancel();
  log_flush_timer_.cancel();
  // Dropped as well as called: a stopped lookup never calls the reload's
  // `done`, which is what clears it otherwise.
  if (auto cancel = std::exchange(cancel_reload_lookup_, nullptr)) cancel();
  // Checks go on while the workers drain (stop_checks() once they ended).
  if (workers_.empty()) stop_checks();
  for (auto& [url, read] : patroni_versions_)
    if (read.cancel) read.cancel();
  patroni_versions_.clear();
  for (auto& [name, t] : overlap_timelines_) cancel_timeline_reads(t);
  overlap_timelines_.clear();
  for (auto& [request, cancel] : patroni_orphans_)
    if (cancel) cancel();
  patroni_orphans_.clear();
  // Lookups still waiting for a name server (checks by host name, a reload)
  // are not waited for: their threads end unheard, and post nothing to
  // control_ from now on (health/name_lookup.h).
  health::name_lookups(control_).abandon_all();
  // The admin endpoint stays while sessions drain (stop_checks()): an
  // operator watching a stop sees what is left (`/status` says stopping).
  signals_.cancel();
  // VRRP has stopped (vrrp_->shutdown() called us): a daemon started now
  // may run its instances while our sessions drain.
  instance_locks_.keep_only({});
  // Graceful: established sessions may finish within hard_stop_after.
  for (auto& w : workers_) w->drain(config_.hard_stop_after);
}

void Daemon::stop_checks() {
  if (admin_) admin_->stop();  // the drain is over: nothing left to watch
  for (auto& c : checkers_)
    for (auto& ch : c) ch->stop();
  for (auto& d : draining_checks_) {
    d.checker->stop();
    d.until->cancel();
  }
  draining_checks_.clear();
  for (auto& w : retired_checkers_)
    if (auto c = w.lock()) c->stop();
  retired_checkers_.clear();
}

void Daemon::load_kernel_path() {
  bool wanted = false;
  for (const auto& p : config_.proxies)
    wanted = wanted || p.data_path == cfg::DataPath::kernel;  // auto is splice (proxy/session.cpp)
  if (!wanted || workers_.empty()) return;
  // One program, set of maps and ring buffer per worker (each owns its
  // sessions). Loaded now or never: after the capability drop only the
  // descriptors are used. Said once, with the reason, when not available.
  proxy::KernelPath::Limits limits;
  const char* fail_cuts = std::getenv("VIPPROXY_TEST_FAIL_CUTS");
  limits.fail_cuts = fail_cuts && std::string_view(fail_cuts) == "1";
  if (limits.fail_cuts) spdlog::warn("data path: VIPPROXY_TEST_FAIL_CUTS=1: the kernel path fails every cut (tests only)");
  const char* refuse_second = std::getenv("VIPPROXY_TEST_REFUSE_SECOND");
  limits.refuse_second = refuse_second && std::string_view(refuse_second) == "1";
  if (limits.refuse_second)
    spdlog::warn("data path: VIPPROXY_TEST_REFUSE_SECOND=1: every hand-over finds the backend's socket refused "
                 "(tests only)");
  // Tests only: maps this small fill with a few sessions.
  if (const char* n = std::getenv("VIPPROXY_TEST_KERNEL_MAX_SESSIONS"); n && *n) {
    limits.max_sessions = std::max<size_t>(1, std::strtoull(n, nullptr, 10));
    spdlog::warn("data path: VIPPROXY_TEST_KERNEL_MAX_SESSIONS={}: the kernel path's maps hold {} sessions per "
                 "worker (tests only)",
                 n, limits.max_sessions);
  }
  std::string why;
  std::vector<std::unique_ptr<proxy::KernelPath>> loaded;
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto k = proxy::KernelPath::load(limits, why);
    if (!k) break;
    loaded.push_back(std::move(k));
  }
  if (loaded.size() < workers_.size()) {
    kernel_why_not_ = why;
    spdlog::warn("data path: kernel forwarding not available: {}; sessions of proxies with data_path kernel use "
                 "splice",
                 why);
    return;
  }
  const char* how = loaded.front()->attach_type();
  for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->set_kernel(std::move(loaded[i]));
  kernel_path_ = true;
  kernel_why_not_.clear();
  spdlog::info("data path: kernel forwarding available ({} program on a SOCKHASH, self-test passed); sessions "
               "of proxies with data_path kernel go to it after their first exchanges",
               how);
  for (const auto& p : config_.proxies)
    if (p.data_path == cfg::DataPath::kernel)
      spdlog::warn("proxy {}: {}", p.name, cfg::kKernelDataPathCaveat);
}

int Daemon::run() {
  std::string notify_error;
  notifier_ = std::make_unique<SystemdNotifier>(std::getenv("NOTIFY_SOCKET"), notify_error);
  if (!notify_error.empty()) spdlog::warn("no systemd notifications: {}", notify_error);
  {
    // Before anything is bound or prepared: a second daemon on this file
    // stops here, the running one's VIPs untouched (daemon/instance_lock.h).
    instance_lock::Locks taken;
    instance_lock::take_vrrp(config_.vrrp, instance_locks_, taken);
    instance_locks_.adopt(std::move(taken));
  }
  unsigned n = config_.threads ? config_.threads : usable_cpus();
  for (auto& pc : config_.proxies) proxies_.push_back(std::make_shared<proxy::ProxyRuntime>(pc, n));
  resolve_backends(proxies_);

  proxy::Worker::Hooks hooks;
  hooks.connect_failed = [this](std::weak_ptr<proxy::BackendRuntime> backend, int error) {
    // Evidence of trouble: check soon (at most one per fast_interval)
    // instead of at the next interval.
    asio::post(control_, [this, backend, error] {
      size_t pi, bi;
      auto b = backend.lock();
      if (!b || !locate(*b, pi, bi)) return;
      checkers_[pi][bi]->check_soon();
      warn_connect_failed(*proxies_[pi], *b, error);
    });
  };
  hooks.ended = [this] {
    // On the worker's thread, its loop ended (drained or stopped): the
    // checks stop once no worker has sessions left to cut.
    asio::post(control_, [this] {
      if (++workers_ended_ == workers_.size()) stop_checks();
    });
  };
  // A second daemon on this file (or another program of our user listening
  // there) refuses to start, before it binds anything: with SO_REUSEPORT
  // the kernel would have let it share the running daemon's clients.
  for (const auto& p : proxies_)
    if (std::string why = proxy::Worker::listen_taken(p->cfg); !why.empty()) throw std::runtime_error(why);
  if (!proxies_.empty()) {
    for (unsigned i = 0; i < n; ++i) {
      workers_.push_back(std::make_unique<proxy::Worker>(i, hooks));
      std::vector<cfg::Endpoint> bound = workers_.back()->listen(proxies_);
      if (i > 0) continue;
      // The loader compared the addresses as written; a host name is only
      // comparable once looked up (cfg/listen.h).
      std::vector<cfg::BoundListen> listens;
      for (size_t pi = 0; pi < proxies_.size(); ++pi) {
        listens.push_back({proxies_[pi]->cfg.name, proxies_[pi]->cfg.listen, bound[pi]});
        bound_listens_[proxies_[pi]->cfg.name] = bound[pi];
      }
      if (std::string why = cfg::bound_listen_clash(listens); !why.empty()) throw std::runtime_error(why);
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
    stop_requested_ = true;  // no SIGHUP from now on, also before stop() runs (posted after VRRP's shutdown)
    spdlog::info("received signal {}", sig);
    // VRRP first: as master it sends priority 0 and removes the VIPs, so the
    // peer takes over after Skew_Time while our workers drain.
    if (vrrp_) vrrp_->shutdown([this] { stop(); });
    else stop();
  });
  std::signal(SIGPIPE, SIG_IGN);
  if (const char* w = std::getenv("VIPPROXY_TEST_STALL_WORKER"); w && *w) {
    test_stall_worker_ = std::strtoull(w, nullptr, 10);
    spdlog::warn("VIPPROXY_TEST_STALL_WORKER={}: SIGUSR1 blocks worker {}'s event loop until SIGUSR2 or the "
                 "daemon stops (tests only)",
                 w, *test_stall_worker_);
  }
  wait_for_sighup();
  ignore_sigusr();

  start_checks();
  for (const auto& p : proxies_)
    for (size_t bi = 0; bi < p->backends.size(); ++bi) read_patroni_version(*p, bi);
  // The instances are prepared first (this throws, changing nothing, when a
  // VIP is an address the host already has: vrrp/vips.h claim_at_start),
  // then the VIPs recorded, before any VIP can be added or removed: whatever
  // stops this daemon from here on, the unit's ExecStopPost knows what to
  // remove. Recorded before the check (as it was), a refused VIP (the
  // host's own address) was in the record when the refused start ended, and
  // ExecStopPost's release-vips would have removed it.
  vip_record_path_ = vip_record::default_path(std::getenv("RUNTIME_DIRECTORY"));
  if (!config_.vrrp.empty()) {
    vrrp_ = std::make_unique<vrrp::Service>(control_, config_.vrrp, config_.node,
                                            [this](const std::string& p) { return proxy_healthy(p); });
    vrrp_->prepare();
  }
  record_vips();
  if (vrrp_) vrrp_->launch();
  // Before the workers run: each reads its kernel path (Worker::kernel()) on
  // every session it accepts, with nothing ordering that read after a write
  // from this thread (ThreadSanitizer saw it race with a client accepted
  // while the programs were loading). Needs CAP_BPF and CAP_NET_ADMIN, which
  // are dropped below.
  load_kernel_path();
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
                 cfg::names::to_string(p->cfg.balance), n);

  if (config_.vrrp_rt_priority > 0) {
    // After the workers started (they keep the normal scheduler) and before
    // the capability drop (CAP_SYS_NICE, when root).
    if (auto why = realtime::enter(config_.vrrp_rt_priority); why.empty()) {
      spdlog::info("control thread (VRRP, checks, admin): SCHED_RR priority {} (vrrp_rt_priority); back to the "
                   "normal scheduler for good if it ever runs {} ms without sleeping",
                   config_.vrrp_rt_priority, realtime::kRtTimeLimit.count());
      watch_realtime_guard();
    } else {
      spdlog::warn("vrrp_rt_priority {}: the control thread keeps the normal scheduler: {}", config_.vrrp_rt_priority,
                   why);
    }
  }
  realtime::forbid_from_now_on();
  cloexec_all_open_descriptors();
  // Listeners, admin and VRRP sockets are open; the kernel path loaded or not.
  privileges::drop_after_start(config_, kernel_path_);
  // Only now may scripts run (the first notify hook and track scripts were
  // asked for by vrrp_->start() above and have been waiting): a child exec'd
  // before the drop would have had the daemon's full capabilities.
  if (vrrp_) vrrp_->release_scripts();
  flush_log_every_second();
  control_.run();
  for (auto& w : workers_) w->join();
  if (!notifier_->finish(std::chrono::seconds(1)))
    spdlog::warn("systemd's notify socket still full at exit: {} notification(s) not sent", notifier_->waiting());
  spdlog::info("stopped");
  return 0;
}

}  // namespace daemon_
