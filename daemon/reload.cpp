// SIGHUP in place, in two steps. The plan does everything that can fail and
// changes nothing the daemon runs with: the file is loaded and checked,
// capabilities it needs are checked, new proxy generations are built and
// their new backends resolved, listeners of new proxies and addresses are
// bound on every worker, and new or restarted VRRP instances are prepared
// (interfaces checked, raw sockets opened). Any of these fails, and what was
// prepared is dropped (sockets closed): the running configuration stays.
// commit_reload() applies the plan and cannot fail.
//
// A new backend or new listen address named by a DNS name is looked up
// without blocking the control thread (a thread of its own runs getaddrinfo,
// health/name_lookup.h, and its answer is abandoned if the reload ends
// first): that thread sends the VRRP adverts and runs the checks, and a
// lookup against a name server that does not answer takes glibc 5 s per try
// and server; a master silent for that long loses the VIP to its backup. The
// lookup is bounded (kReloadResolveTimeout); an address literal is taken as
// it is.
#include <spdlog/spdlog.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <stdexcept>

#include "cfg/diff.h"
#include "cfg/listen.h"
#include "cfg/load.h"
#include "daemon/daemon.h"
#include "daemon/privileges.h"
#include "health/name_lookup.h"
#include "vrrp/service.h"

namespace daemon_ {

struct Daemon::ReloadPlan {
  cfg::Config next;
  cfg::Diff diff;
  std::vector<std::shared_ptr<proxy::ProxyRuntime>> generations;  // in the new file's order
  std::vector<std::shared_ptr<proxy::Worker::Reload>> workers;    // one per worker, listeners bound
  std::optional<vrrp::Service::ReloadPlan> vrrp;                  // the running service's
  std::unique_ptr<vrrp::Service> new_vrrp;                        // the first instances, prepared
  // Proxy name -> the address its new listen host name was looked up to
  // (resolve_new_backends()), so binding it asks no name server.
  std::map<std::string, std::string> listen_hosts;
  // Proxy name -> the address its listeners are bound to once applied.
  std::map<std::string, cfg::Endpoint> bound_listens;
  // The locks of new VRRP instances (daemon/instance_lock.h), released if
  // the reload fails; the names of every instance of `next`.
  instance_lock::Locks locks;
  std::map<std::string, std::string> lock_names;
};

void Daemon::reload(std::function<void(const std::string& error)> done) {
  std::shared_ptr<ReloadPlan> plan;
  try {
    plan = plan_reload();
  } catch (const std::exception& e) {
    done(e.what());
    return;
  }
  if (!plan) {  // unchanged
    reread_check_tls();
    done("");
    return;
  }
  resolve_new_backends(plan, [this, plan, done](const std::string& error) {
    cancel_reload_lookup_ = nullptr;
    if (!error.empty()) {
      done(error);
      return;
    }
    try {
      finish_plan(*plan);
    } catch (const std::exception& e) {
      done(e.what());
      return;
    }
    commit_reload(*plan);
    done("");
  });
}

void Daemon::resolve_new_backends(std::shared_ptr<ReloadPlan> plan,
                                  std::function<void(const std::string& error)> done) {
  namespace asio = boost::asio;
  using asio::ip::tcp;
  struct Name {
    std::shared_ptr<proxy::BackendRuntime> backend;  // null: the proxy's new listen address
    std::string proxy;
    std::string host;
    uint16_t port = 0;
  };
  std::vector<Name> names;
  for (auto& g : plan->generations)
    for (auto& b : g->backends) {
      if (b->endpoint.port() != 0) continue;  // carried over: resolved already
      boost::system::error_code ec;
      auto addr = asio::ip::make_address(b->cfg.address.host, ec);
      if (!ec)
        b->endpoint = tcp::endpoint(addr, b->cfg.address.port);
      else
        names.push_back({b, g->cfg.name, b->cfg.address.host, b->cfg.address.port});
    }
  // A new listen address given by host name: finish_plan() binds it on
  // every worker, and its getaddrinfo would ask the name server there, on
  // this thread, once per worker.
  for (auto& g : plan->generations) {
    const proxy::ProxyRuntime* prev = running(g->cfg.name);
    if (prev && cfg::same_listener(prev->cfg, g->cfg)) continue;  // kept, bound already
    boost::system::error_code ec;
    asio::ip::make_address(g->cfg.listen.host, ec);
    if (ec) names.push_back({nullptr, g->cfg.name, g->cfg.listen.host, g->cfg.listen.port});
  }
  if (names.empty()) {
    done("");
    return;
  }
  struct Lookup {
    explicit Lookup(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::vector<std::function<void()>> cancels;  // of the names' lookups
    size_t left = 0;
    bool over = false;
  };
  auto lookup = std::make_shared<Lookup>(control_);
  lookup->left = names.size();
  // Ends the lookup once: with "" when every name is in, with the first
  // error, at the deadline, or (no `done`) when the daemon stops. A lookup
  // still running then ends unheard.
  auto finish = [lookup, done](const std::string& error, bool call) {
    if (lookup->over) return;
    lookup->over = true;
    lookup->timer.cancel();
    for (auto& cancel : lookup->cancels) cancel();  // answers still to come are not posted
    lookup->cancels.clear();
    if (call) done(error);
  };
  cancel_reload_lookup_ = [finish] { finish("", false); };
  spdlog::info("SIGHUP: looking up {} new backend or listen name(s), for up to {} s", names.size(),
               kReloadResolveTimeout.count());
  lookup->timer.expires_after(kReloadResolveTimeout);
  lookup->timer.async_wait([finish, names, plan](const boost::system::error_code& ec) {
    if (ec) return;
    std::string which;
    for (const auto& n : names)
      if (n.backend ? n.backend->endpoint.port() == 0 : !plan->listen_hosts.count(n.proxy))
        which += (which.empty() ? "'" : ", '") + n.host + "'";
    finish("no answer for " + which + " within " + std::to_string(kReloadResolveTimeout.count()) + " s", true);
  });
  auto& lookups = health::name_lookups(control_);
  for (const auto& n : names) {
    lookup->cancels.push_back(lookups.look_up(
        n.host, n.port, control_.get_executor(),
        [lookup, finish, n, plan](const boost::system::error_code& error, std::vector<tcp::endpoint> eps) {
          if (lookup->over) return;
          if (error || eps.empty()) {
            finish("proxy " + n.proxy + (n.backend ? ": backend " + n.backend->cfg.name : std::string(": listen")) +
                       ": cannot resolve '" + n.host + "': " + (error ? error.message() : "no address"),
                   true);
            return;
          }
          if (n.backend)
            n.backend->endpoint = eps.front();
          else
            plan->listen_hosts[n.proxy] = eps.front().address().to_string();
          if (--lookup->left == 0) finish("", true);
        }));
  }
}

// An unchanged file still has TLS checks read their ca_file again (a CA
// bundle renewed in place; commit_reload does the same for a changed file).
void Daemon::reread_check_tls() {
  for (size_t pi = 0; pi < proxies_.size() && pi < checkers_.size(); ++pi) {
    const auto& p = *proxies_[pi];
    if (p.cfg.check.type != cfg::CheckType::http || !p.cfg.check.tls.enabled) continue;
    for (size_t bi = 0; bi < p.backends.size() && bi < checkers_[pi].size(); ++bi)
      checkers_[pi][bi]->reconfigure(p.cfg.check, cfg::check_target(p.cfg, bi), session_address(*p.backends[bi]));
  }
}

std::unique_ptr<Daemon::ReloadPlan> Daemon::plan_reload() {
  auto p = std::make_unique<ReloadPlan>();
  p->next = cfg::load_file(config_.source);  // cfg::Error names file, line and key
  warn_if_secrets_readable(p->next);
  override_data_path(p->next);
  p->diff = cfg::diff(config_, p->next);
  if (p->diff.empty()) {
    spdlog::info("SIGHUP: {} unchanged", config_.source);
    return nullptr;
  }
  for (const auto& key : p->diff.restart_only)
    spdlog::warn("SIGHUP: {} changed; it takes effect at the next restart, the running value stays", key);
  if (uint64_t missing = privileges::newly_missing(config_, p->next, privileges::permitted_now(), kernel_path_))
    throw std::runtime_error("the new file needs " + privileges::names(missing) +
                             ", dropped after start: restart to apply");
  cfg::Config& next = p->next;
  // Restart-only keys keep their running value (diff's restart_only), so
  // /status shows what runs and the next SIGHUP warns again.
  next.threads = config_.threads;
  next.vrrp_rt_priority = config_.vrrp_rt_priority;
  next.node = config_.node;
  next.admin.enabled = config_.admin.enabled;
  next.admin.listen = config_.admin.listen;

  // New generations carry backends over by name and address; new backends'
  // names are resolved next (resolve_new_backends()).
  const size_t nworkers = workers_.size();
  for (const auto& pc : next.proxies)
    p->generations.push_back(
        std::make_shared<proxy::ProxyRuntime>(pc, std::max<size_t>(nworkers, 1), running(pc.name)));
  if (!p->generations.empty() && workers_.empty())
    throw std::runtime_error("proxies cannot be added to a daemon started without any: restart to apply");
  return p;
}

void Daemon::finish_plan(ReloadPlan& rp) {
  ReloadPlan* p = &rp;
  const cfg::Config& next = p->next;
  // A new address another process listens on is refused, as at start
  // (proxy::Worker::listen_taken): SO_REUSEPORT would share its clients
  // with it. An address one of our own listeners covers is not asked (it
  // would be refused by our own socket): the clash check below judges it.
  for (const auto& g : p->generations) {
    const proxy::ProxyRuntime* prev = running(g->cfg.name);
    if (workers_.empty() || (prev && cfg::same_listener(prev->cfg, g->cfg))) continue;
    cfg::Proxy at = g->cfg;
    if (auto h = p->listen_hosts.find(at.name); h != p->listen_hosts.end()) at.listen.host = h->second;
    bool ours = false;
    for (const auto& [name, bound] : bound_listens_) ours = ours || cfg::listens_clash(at.listen, bound);
    if (ours) continue;
    if (std::string why = proxy::Worker::listen_taken(at); !why.empty()) throw std::runtime_error(why);
  }
  // Listeners of new proxies and new addresses, bound on every worker.
  for (auto& w : workers_) {
    auto plan = std::make_shared<proxy::Worker::Reload>();
    plan->proxies = p->generations;
    plan->grace = next.hard_stop_after;
    for (const auto& g : p->generations) {
      const proxy::ProxyRuntime* prev = running(g->cfg.name);
      if (prev && cfg::same_listener(prev->cfg, g->cfg)) {
        plan->listeners.push_back(nullptr);
        continue;
      }
      cfg::Proxy at = g->cfg;  // a listen host name as the address it was looked up to
      if (auto h = p->listen_hosts.find(at.name); h != p->listen_hosts.end()) at.listen.host = h->second;
      plan->listeners.push_back(w->bind_listener(at));
    }
    p->workers.push_back(std::move(plan));
  }
  // The loader compared the addresses as written; a new listen host name is
  // only comparable once looked up (cfg/listen.h), and against the kept
  // listeners too.
  if (!p->workers.empty()) {
    std::vector<cfg::BoundListen> listens;
    for (size_t gi = 0; gi < p->generations.size(); ++gi) {
      const cfg::Proxy& pc = p->generations[gi]->cfg;
      const auto& fresh = p->workers.front()->listeners[gi];
      cfg::Endpoint bound = fresh ? fresh->bound : bound_listens_.at(pc.name);
      listens.push_back({pc.name, pc.listen, bound});
      p->bound_listens[pc.name] = bound;
    }
    if (std::string why = cfg::bound_listen_clash(listens); !why.empty()) throw std::runtime_error(why);
  }
  // A new instance another daemon of this host runs refuses the reload.
  p->lock_names = instance_lock::take_vrrp(next.vrrp, instance_locks_, p->locks);
  // VRRP instances: new and restarted ones prepared, the running ones untouched.
  if (vrrp_) {
    p->vrrp = vrrp_->prepare_reload(next.vrrp);
  } else if (!next.vrrp.empty()) {
    p->new_vrrp = std::make_unique<vrrp::Service>(control_, next.vrrp, config_.node,
                                                  [this](const std::string& n) { return proxy_healthy(n); });
    p->new_vrrp->prepare();
  }
}

void Daemon::commit_reload(ReloadPlan& p) {
  auto& gens = p.generations;
  bound_listens_ = std::move(p.bound_listens);
  instance_locks_.adopt(std::move(p.locks));
  instance_locks_.keep_only(p.lock_names);
  if (p.vrrp) {
    vrrp_->commit_reload(std::move(*p.vrrp));
  } else if (p.new_vrrp) {
    p.new_vrrp->launch();
    p.new_vrrp->release_scripts();  // the capability drop happened at start
    vrrp_ = std::move(p.new_vrrp);
  }

  // Checks: a kept backend keeps its checker (and so its state: an UP
  // backend stays eligible), told the new rule if it changed; a new backend
  // gets a new checker; a removed one is stopped and made ineligible, so a
  // connect in flight to it goes elsewhere.
  std::vector<std::vector<std::shared_ptr<health::Checker>>> checkers(gens.size());
  for (size_t gi = 0; gi < gens.size(); ++gi) {
    const auto& g = *gens[gi];
    for (size_t bi = 0; bi < g.backends.size(); ++bi) {
      size_t opi, obi;
      std::shared_ptr<health::Checker> c;
      if (locate(*g.backends[bi], opi, obi)) {
        c = checkers_[opi][obi];
        const auto& old = proxies_[opi]->cfg;
        // A TLS check is told at every reload, changed or not: it reads its
        // ca_file again (renewed in place).
        if (old.check != g.cfg.check || cfg::check_target(old, obi) != cfg::check_target(g.cfg, bi) ||
            (g.cfg.check.type == cfg::CheckType::http && g.cfg.check.tls.enabled))
          c->reconfigure(g.cfg.check, cfg::check_target(g.cfg, bi), session_address(*g.backends[bi]));
      } else {
        c = make_checker(g, bi, std::chrono::milliseconds(0));
        c->start();
      }
      checkers[gi].push_back(std::move(c));
    }
  }
  // A removed backend's check goes on while its sessions drain
  // (hard_stop_after): a node demoted meanwhile gets them cut.
  auto until = std::make_shared<boost::asio::steady_timer>(control_, p.next.hard_stop_after);
  bool draining = false;
  for (size_t pi = 0; pi < proxies_.size(); ++pi)
    for (size_t bi = 0; bi < proxies_[pi]->backends.size(); ++bi) {
      bool kept = false;
      for (const auto& g : gens) kept = kept || g->index_of(proxies_[pi]->backends[bi].get()) != proxy::npos;
      if (kept) continue;
      proxies_[pi]->backends[bi]->eligible.store(false, std::memory_order_release);
      draining_checks_.push_back({proxies_[pi], bi, checkers_[pi][bi], until});
      draining = true;
    }
  if (draining)
    until->async_wait([this, until](const boost::system::error_code& ec) {
      if (ec) return;  // stop_checks() stopped them
      std::erase_if(draining_checks_, [&](const DrainingCheck& d) {
        if (d.until != until) return false;
        // A check waiting for its reply is left to finish, not cut under
        // Patroni; the daemon's stop ends it if it is still there.
        d.checker->retire();
        std::erase_if(retired_checkers_, [](const auto& w) { return w.expired(); });
        retired_checkers_.push_back(d.checker);
        return true;
      });
      forget_removed_patroni_urls();
    });
  // `first`: the new generation starts on the backend in use if it is kept.
  for (auto& g : gens) {
    if (const proxy::ProxyRuntime* prev = running(g->cfg.name)) {
      size_t cur = prev->current.load();
      if (cur != proxy::npos) g->current.store(g->index_of(prev->backends[cur].get()));
    }
  }
  proxies_ = std::move(gens);
  checkers_ = std::move(checkers);
  forget_removed_names();
  forget_removed_patroni_urls();
  forget_changed_timelines();
  for (size_t pi = 0; pi < proxies_.size(); ++pi) elect(pi);
  for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->post_reload(std::move(p.workers[i]));
  if (vrrp_) vrrp_->proxy_health_changed();
  if (p.next.log_level != config_.log_level) spdlog::set_level(spdlog::level::from_str(p.next.log_level));
  config_ = std::move(p.next);
  record_vips();
  for (const auto& line : p.diff.changes) spdlog::info("SIGHUP: {}", line);
  spdlog::info("SIGHUP: {} applied ({} change{})", config_.source, p.diff.changes.size(),
               p.diff.changes.size() == 1 ? "" : "s");
  // The kernel path is loaded at start or never (CAP_BPF is gone after it):
  // a proxy set to kernel forwards with splice, and says why (as at start;
  // kernel_why_not_ is in /status too).
  if (!kernel_path_)
    for (const auto& pc : config_.proxies)
      if (pc.data_path == cfg::DataPath::kernel)
        spdlog::warn("SIGHUP: proxy {}: data_path kernel: the kernel path is not available ({}); its sessions use "
                     "splice",
                     pc.name, kernel_why_not_);
}

// What is kept by name for the running proxies and backends
// (warn_connect_failed's records, the `first` overlap watches) goes with a
// name no reload keeps: before, every name ever configured stayed for the
// process's life, and a name configured again later started from the old
// record. A removed backend's sessions drain, but its failed connects are
// no longer reported (the connect_failed hook only looks at running
// backends), so its record goes at once.
void Daemon::forget_removed_names() {
  std::vector<std::string> forgotten;
  std::erase_if(connect_failures_, [&](const auto& entry) {
    for (const auto& p : proxies_)
      for (const auto& b : p->backends)
        if (entry.first == p->cfg.name + "/" + b->cfg.name) return false;
    forgotten.push_back(entry.first);
    return true;
  });
  std::erase_if(overlaps_, [&](const auto& entry) { return running(entry.first) == nullptr; });
  if (!forgotten.empty()) {
    std::string names;
    for (const auto& n : forgotten) names += (names.empty() ? "" : ", ") + n;
    spdlog::debug("SIGHUP: failed-connect records of {} backend(s) no longer configured dropped ({}); {} kept",
                  forgotten.size(), names, connect_failures_.size());
  }
}

}  // namespace daemon_
