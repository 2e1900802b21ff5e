#include "vrrp/service.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <algorithm>

#include "cfg/diff.h"
#include "vrrp/netlink.h"

namespace vrrp {

namespace asio = boost::asio;
namespace json = boost::json;

Service::Service(asio::io_context& io, const std::vector<cfg::VrrpInstance>& instances, std::string node,
                 ProxyHealthy proxy_healthy)
    : Service(io, instances, std::move(node), std::move(proxy_healthy), make_netlink_kernel(io)) {}

Service::Service(asio::io_context& io, const std::vector<cfg::VrrpInstance>& instances, std::string node,
                 ProxyHealthy proxy_healthy, std::unique_ptr<Kernel> kernel)
    : io_(io), kernel_(std::move(kernel)), spawner_(io, /*held=*/true), proxy_healthy_(std::move(proxy_healthy)), node_(std::move(node)) {
  for (const auto& inst : instances) engines_.push_back(std::make_unique<Engine>(env(), inst));
}

Engine::Env Service::env() {
  Engine::Env e{io_, *kernel_, spawner_, proxy_healthy_, node_};
  e.held_by_running = [this](const Vip& v) {
    return std::any_of(engines_.begin(), engines_.end(), [&](const auto& en) { return en && en->running_with(v); });
  };
  return e;
}

Service::ReloadPlan Service::prepare_reload(const std::vector<cfg::VrrpInstance>& instances) {
  // Check first, change after: a reload that cannot be applied whole is
  // refused whole. Every new or restarted instance is built and prepared
  // (interface and addresses resolved, its raw socket opened) while the
  // running instances go on untouched: when the kernel refuses the new
  // socket (or the interface is gone) the exception names the instance,
  // the new engines are destroyed (their sockets closed) and the running
  // ones, including the one that was to be restarted, keep running.
  ReloadPlan plan;
  if (stopped_) return plan;
  for (const auto& inst : instances) {
    ReloadPlan::Item p{inst, nullptr};
    const Engine* running = nullptr;
    for (const auto& e : engines_)
      if (e->config().name == inst.name) running = e.get();
    // A tracked interface that does not exist is down (FAULT), as at start
    // where it may come later. A name first written in this reload that
    // names no interface is a typo far more often than an interface still to
    // come, and it would give the VIP away: refused (keepalived warns and
    // ignores such a track_interface).
    for (const auto& ti : inst.track.interfaces) {
      bool tracked = false;
      if (running)
        for (const auto& t : running->config().track.interfaces) tracked = tracked || t.name == ti.name;
      if (!tracked && !kernel_->link(ti.name))
        throw std::runtime_error("vrrp " + inst.name + ": track.interfaces: no interface " + ti.name +
                                 " on this host; tracking it would put the instance in FAULT (create the "
                                 "interface first, or restart to track one that comes later)");
    }
    if (!running || cfg::vrrp_needs_restart(running->config(), inst)) {
      if (!kernel_->link(inst.interface))
        throw std::runtime_error("vrrp " + inst.name + ": interface " + inst.interface + " does not exist");
      p.fresh = std::make_unique<Engine>(env(), inst);
      if (started_) {
        try {
          p.fresh->prepare();
        } catch (const std::exception& ex) {
          throw std::runtime_error("vrrp " + inst.name + (running ? ": cannot restart: " : ": cannot start: ") +
                                   ex.what() + (running ? " (the running instance is kept, unchanged)" : ""));
        }
      }
    }
    plan.items.push_back(std::move(p));
  }
  return plan;
}

void Service::commit_reload(ReloadPlan plan) {
  if (stopped_) return;
  // Every instance that stops (removed, or restarted) stops before any new
  // one starts: a new instance may hold addresses an old one held (an
  // instance renamed, a VIP moved to another instance), and an address owner
  // is MASTER as soon as it starts. The old one's priority-0 advert and VIP
  // removal must come first, not undo the new one's.
  for (auto& e : engines_) {
    const ReloadPlan::Item* item = nullptr;
    for (const auto& p : plan.items)
      if (p.inst.name == e->config().name) item = &p;
    if (!item) {
      spdlog::info("vrrp {}: removed; stopping it", e->config().name);
      e->shutdown();
    } else if (item->fresh) {
      spdlog::warn("vrrp {}: interface, VRID, version, addresses, source address or multicast/unicast changed: "
                   "restarting the instance",
                   item->inst.name);
      e->shutdown();
    }
  }
  std::vector<std::unique_ptr<Engine>> next;
  for (auto& p : plan.items) {
    std::unique_ptr<Engine> engine;
    for (auto& e : engines_)
      if (e && e->config().name == p.inst.name) engine = std::move(e);
    if (!p.fresh) {
      if (!(engine->config() == p.inst)) engine->reconfigure(p.inst);
      next.push_back(std::move(engine));
      continue;
    }
    if (!engine) spdlog::info("vrrp {}: added", p.inst.name);
    if (started_) p.fresh->launch();
    next.push_back(std::move(p.fresh));
  }
  engines_ = std::move(next);
}

void Service::release_scripts() { spawner_.release(); }

Service::~Service() {
  engines_.clear();
  spawner_.stop();
  if (kernel_) kernel_->stop();
}

void Service::prepare() {
  if (prepared_) return;
  Kernel::Events ev;
  ev.link_changed = [this](const LinkInfo& l) {
    for (auto& e : engines_) e->on_link(l);
  };
  ev.address_removed = [this](int ifindex, const IpAddress& a) {
    for (auto& e : engines_) e->on_address_removed(ifindex, a);
  };
  ev.address_added = [this](int ifindex, const IpAddress& a) {
    for (auto& e : engines_) e->on_address_added(ifindex, a);
  };
  ev.resync = [this] {
    spdlog::warn("vrrp: netlink events were lost (ENOBUFS); re-reading links and addresses");
    for (auto& e : engines_) e->resync();
  };
  kernel_->watch(std::move(ev));
  for (auto& e : engines_) e->prepare();
  prepared_ = true;
}

void Service::launch() {
  if (started_ || !prepared_) return;
  started_ = true;
  for (auto& e : engines_) e->launch();
}

void Service::proxy_health_changed() {
  for (auto& e : engines_) e->reevaluate();
}

void Service::shutdown(std::function<void()> done) {
  if (!stopped_) {
    stopped_ = true;
    // Engines send their priority-0 adverts and remove VIPs synchronously
    // (a raw sendto and a netlink request each), so by the time `done` runs
    // the peer has been told and the addresses are gone.
    for (auto& e : engines_) e->shutdown();
    // Notify hooks (the "stop" one was just started) run to their exit or
    // their timeout, when their process group is killed; track scripts in
    // flight were just killed (Engine::shutdown: nobody reads their result)
    // and are only being reaped. The io_context waits for each (its pidfd),
    // so the daemon exits only once every child is reaped.
    if (spawner_.running())
      spdlog::info("vrrp: waiting for {} child process(es) to exit (notify hooks run to their end, each at most its "
                   "timeout; track scripts in flight were killed)",
                   spawner_.running());
    kernel_->stop();
    spdlog::info("vrrp: stopped {} instance(s)", engines_.size());
  }
  if (done) asio::post(io_, std::move(done));
}

json::array Service::status() const {
  json::array a;
  for (const auto& e : engines_) a.push_back(e->status());
  return a;
}

void Service::metrics(metrics::Writer& w) const {
  using metrics::Type;
  auto inst = [](const Engine& e) { return metrics::Labels{{"instance", e.config().name}}; };
#define VIPPROXY_VRRP_PROM(ctr, help)                                      \
  w.family("vrrp_" #ctr, Type::counter, help);                             \
  for (const auto& e : engines_) w.sample(inst(*e), e->counters().ctr);
  VIPPROXY_VRRP_COUNTERS(VIPPROXY_VRRP_PROM)
#undef VIPPROXY_VRRP_PROM
  w.family("vrrp_drops", Type::counter, "VRRP packets discarded before the state machine, by reason");
#define VIPPROXY_VRRP_PROM(ctr, help) \
  for (const auto& e : engines_) w.sample({{"instance", e->config().name}, {"reason", #ctr}}, e->drops().ctr);
  VIPPROXY_VRRP_DROPS(VIPPROXY_VRRP_PROM)
#undef VIPPROXY_VRRP_PROM
  w.family("vrrp_state", Type::gauge, "1 for the instance's current state (INIT, BACKUP, MASTER, FAULT)");
  for (const auto& e : engines_)
    for (auto s : {fsm::State::initialize, fsm::State::backup, fsm::State::master, fsm::State::fault})
      w.sample({{"instance", e->config().name}, {"state", std::string(fsm::to_string(s))}}, e->state() == s ? 1 : 0);
  // Each VIP as desired (1 while MASTER) and as the kernel confirmed it: a
  // difference that lasts is a kernel refusing an add or a delete (the
  // failed attempts gauge says how many in a row, the log says why).
  auto vip = [&](const char* name, const char* help, auto value) {
    w.family(name, Type::gauge, help);
    for (const auto& e : engines_)
      for (const auto& v : e->vip_states())
        w.sample({{"instance", e->config().name}, {"address", v.address}}, value(v));
  };
  vip("vrrp_vip_desired", "1 while the instance wants the virtual address on its device (MASTER)",
      [](const Engine::VipState& v) -> uint64_t { return v.desired ? 1 : 0; });
  vip("vrrp_vip_installed", "1 while the kernel confirmed the virtual address on its device",
      [](const Engine::VipState& v) -> uint64_t { return v.actual == vips::Presence::present ? 1 : 0; });
  vip("vrrp_vip_failed_attempts", "Consecutive failed additions or removals of the virtual address",
      [](const Engine::VipState& v) -> uint64_t { return v.failures; });
  w.family("vrrp_priority", Type::gauge, "Effective VRRP priority (track weights applied)");
  for (const auto& e : engines_) w.sample(inst(*e), e->vars().priority);
}

std::string Service::metrics() const {
  metrics::Writer w;
  metrics(w);
  return w.text();
}

}  // namespace vrrp
