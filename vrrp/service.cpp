#include "vrrp/service.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "cfg/diff.h"
#include "vrrp/netlink.h"

namespace vrrp {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// Prometheus label values escape backslash, quote and newline.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

Service::Service(asio::io_context& io, const std::vector<cfg::VrrpInstance>& instances, std::string node,
                 ProxyHealthy proxy_healthy)
    : Service(io, instances, std::move(node), std::move(proxy_healthy), make_netlink_kernel(io)) {}

Service::Service(asio::io_context& io, const std::vector<cfg::VrrpInstance>& instances, std::string node,
                 ProxyHealthy proxy_healthy, std::unique_ptr<Kernel> kernel)
    : io_(io), kernel_(std::move(kernel)), spawner_(io), proxy_healthy_(std::move(proxy_healthy)), node_(std::move(node)) {
  for (const auto& inst : instances) engines_.push_back(std::make_unique<Engine>(env(), inst));
}

Engine::Env Service::env() { return Engine::Env{io_, *kernel_, spawner_, proxy_healthy_, node_}; }

void Service::reload(const std::vector<cfg::VrrpInstance>& instances) {
  if (stopped_) return;
  // Check first, change after: a reload that cannot be applied whole is
  // refused whole.
  for (const auto& inst : instances) {
    const Engine* running = nullptr;
    for (const auto& e : engines_)
      if (e->config().name == inst.name) running = e.get();
    if (running && !cfg::vrrp_needs_restart(running->config(), inst)) continue;
    if (!kernel_->link(inst.interface))
      throw std::runtime_error("vrrp " + inst.name + ": interface " + inst.interface + " does not exist");
  }
  std::vector<std::unique_ptr<Engine>> next;
  std::vector<Engine*> to_start;
  for (const auto& inst : instances) {
    std::unique_ptr<Engine> engine;
    for (auto& e : engines_)
      if (e && e->config().name == inst.name) engine = std::move(e);
    if (engine && engine->config() == inst) {
      // unchanged
    } else if (engine && !cfg::vrrp_needs_restart(engine->config(), inst)) {
      engine->reconfigure(inst);
    } else {
      if (engine) {
        spdlog::warn("vrrp {}: interface, VRID, version, addresses or peers changed: restarting the instance",
                     inst.name);
        engine->shutdown();
      } else {
        spdlog::info("vrrp {}: added", inst.name);
      }
      engine = std::make_unique<Engine>(env(), inst);
      to_start.push_back(engine.get());
    }
    next.push_back(std::move(engine));
  }
  for (auto& e : engines_) {
    if (!e) continue;
    spdlog::info("vrrp {}: removed; stopping it", e->config().name);
    e->shutdown();
  }
  engines_ = std::move(next);
  for (Engine* e : to_start) {
    try {
      if (started_) e->start();
    } catch (const std::exception& ex) {
      // The interface existed a moment ago; anything else (a socket the
      // kernel refuses) leaves this instance stopped: say so loudly.
      spdlog::error("vrrp {}: could not start after reload: {}", e->config().name, ex.what());
    }
  }
}

Service::~Service() {
  engines_.clear();
  spawner_.stop(true);
  if (kernel_) kernel_->stop();
}

void Service::start() {
  if (started_) return;
  started_ = true;
  Kernel::Events ev;
  ev.link_changed = [this](const LinkInfo& l) {
    for (auto& e : engines_) e->on_link(l);
  };
  ev.address_removed = [this](int ifindex, const IpAddress& a) {
    for (auto& e : engines_) e->on_address_removed(ifindex, a);
  };
  ev.resync = [this] {
    spdlog::warn("vrrp: netlink events were lost (ENOBUFS); re-reading links and addresses");
    for (auto& e : engines_) e->resync();
  };
  kernel_->watch(std::move(ev));
  for (auto& e : engines_) e->start();
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
    // Notify hooks (the "stop" one was just started) keep running on their
    // own; we only stop waiting for them so the io_context can run dry.
    spawner_.stop(false);
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

std::string Service::metrics() const {
  std::string out;
  auto line = [&](const std::string& s) {
    out += s;
    out += '\n';
  };
#define VIPPROXY_VRRP_PROM(ctr, help)                                                            \
  line("# HELP vipproxy_vrrp_" #ctr "_total " help);                                             \
  line("# TYPE vipproxy_vrrp_" #ctr "_total counter");                                           \
  for (const auto& e : engines_)                                                                  \
    line("vipproxy_vrrp_" #ctr "_total{instance=\"" + label(e->config().name) + "\"} " +          \
         std::to_string(e->counters().ctr));
  VIPPROXY_VRRP_COUNTERS(VIPPROXY_VRRP_PROM)
#undef VIPPROXY_VRRP_PROM
  line("# HELP vipproxy_vrrp_drops_total VRRP packets discarded before the state machine, by reason");
  line("# TYPE vipproxy_vrrp_drops_total counter");
#define VIPPROXY_VRRP_PROM(ctr, help)                                                            \
  for (const auto& e : engines_)                                                                  \
    line("vipproxy_vrrp_drops_total{instance=\"" + label(e->config().name) + "\",reason=\"" #ctr "\"} " + \
         std::to_string(e->drops().ctr));
  VIPPROXY_VRRP_DROPS(VIPPROXY_VRRP_PROM)
#undef VIPPROXY_VRRP_PROM
  line("# HELP vipproxy_vrrp_state 1 for the instance's current state (INIT, BACKUP, MASTER, FAULT)");
  line("# TYPE vipproxy_vrrp_state gauge");
  for (const auto& e : engines_)
    for (auto s : {fsm::State::initialize, fsm::State::backup, fsm::State::master, fsm::State::fault})
      line("vipproxy_vrrp_state{instance=\"" + label(e->config().name) + "\",state=\"" +
           std::string(fsm::to_string(s)) + "\"} " + (e->state() == s ? "1" : "0"));
  line("# HELP vipproxy_vrrp_priority Effective VRRP priority (track weights applied)");
  line("# TYPE vipproxy_vrrp_priority gauge");
  for (const auto& e : engines_)
    line("vipproxy_vrrp_priority{instance=\"" + label(e->config().name) + "\"} " +
         std::to_string(e->vars().priority));
  return out;
}

}  // namespace vrrp
