// One VRRP instance's life and inputs: start, reload, shutdown, link and
// address events, track inputs and scripts, the fsm's actions and timers,
// notify hooks, /status. Split by concern around it: engine_packets.cpp
// (adverts, GARP, intake), engine_vips.cpp (VIPs desired vs. actual),
// engine_foreign.cpp (routers on our VRID we ignore). Kept above 500 lines:
// what remains shares the Script records and the instance's lifecycle.
#include "vrrp/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <boost/json.hpp>

namespace vrrp {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

template <class... F> struct Overload : F... { using F::operator()...; };
template <class... F> Overload(F...) -> Overload<F...>;

// keepalived's notify argument ("MASTER", "BACKUP", "FAULT", "STOP").
const char* notify_state(fsm::State s) {
  switch (s) {
    case fsm::State::master: return "MASTER";
    case fsm::State::backup: return "BACKUP";
    case fsm::State::fault: return "FAULT";
    case fsm::State::initialize: return "STOP";
  }
  return "?";
}

}  // namespace

struct Engine::Script {
  Script(asio::io_context& io, const cfg::TrackScript& c) : cfg(c), rf(c.rise, c.fall), timer(io) {}
  cfg::TrackScript cfg;
  track::RiseFall rf;
  Timer timer;
  bool running = false;
  // Added by a reload to a running instance: it counts for nothing until
  // its first result (keepalived's initial script state), rather than as
  // failing the way a script does at start (reevaluate).
  bool added_by_reload = false;
  uint64_t run_id = 0;  // of the run in flight (Spawner::cancel)
  // Completions of this script's runs hold a weak copy: a reload that
  // replaces the scripts makes the old runs' completions no-ops.
  std::shared_ptr<int> token = std::make_shared<int>(0);
};

Engine::Engine(Env env, cfg::VrrpInstance config)
    : env_(std::move(env)),
      cfg_(std::move(config)),
      fsm_timer_(env_.io),
      garp_timer_(env_.io),
      vip_timer_(env_.io),
      hooks_(env_.spawner, cfg_.name) {
  hooks_.set_limits(cfg_.notify.timeout, cfg_.notify.max_running);
  fsm_cfg_.version = uint8_t(cfg_.version);
  fsm_cfg_.start_as_master_hint = cfg_.state == cfg::VrrpState::master;
  set_fsm_config();
  vars_ = fsm::initial_vars(fsm_cfg_);
  auth_.type = cfg_.auth_type == cfg::AuthType::pass ? AuthType::pass : AuthType::none;
  auth_.password = cfg_.auth_password;
  tracked_if_up_.assign(cfg_.track.interfaces.size(), false);
  for (const auto& s : cfg_.track.scripts) scripts_.push_back(std::make_unique<Script>(env_.io, s));
  for (const auto& p : cfg_.unicast_peers)
    if (auto ip = IpAddress::parse(p)) peers_.push_back(*ip);
}

Engine::~Engine() {
  // Whoever owns the engine should have called shutdown(); an exception out
  // of Daemon::run() (caught in main) destroys the Service without it. The
  // VIPs must not outlive the process on the interface, and the peer is
  // told (priority 0) rather than left to wait Master_Down_Interval.
  try {
    shutdown();
  } catch (const std::exception& ex) {
    spdlog::error("vrrp {}: stopping while destroyed: {}", cfg_.name, ex.what());
  } catch (...) {
  }
}

void Engine::set_fsm_config() {
  using fsm::Duration;
  fsm_cfg_.priority = uint8_t(std::min(cfg_.priority, 255u));
  fsm_cfg_.advert_int = std::chrono::duration_cast<Duration>(cfg_.advert_int);
  fsm_cfg_.preempt = cfg_.preempt;
  fsm_cfg_.preempt_delay = std::chrono::duration_cast<Duration>(cfg_.preempt_delay);
  fsm_cfg_.garp_repeat = cfg_.garp.master_repeat;
  fsm_cfg_.garp_interval = std::chrono::duration_cast<Duration>(cfg_.garp.interval);
  fsm_cfg_.garp_delay = std::chrono::duration_cast<Duration>(cfg_.garp.master_delay);
  fsm_cfg_.garp_refresh = std::chrono::duration_cast<Duration>(cfg_.garp.master_refresh);
}

void Engine::reconfigure(cfg::VrrpInstance next) {
  const bool scripts_changed = next.track.scripts != cfg_.track.scripts;
  const bool interfaces_changed = next.track.interfaces != cfg_.track.interfaces;
  const bool vips_changed = next.virtual_ipaddresses != cfg_.virtual_ipaddresses;
  // Tracked proxies new to this instance: a proxy added by the same reload
  // has no check result yet; counted as unhealthy, a weight-0 entry (the
  // default) put a MASTER in FAULT at once and gave its VIP away.
  std::vector<std::string> added_proxies;
  for (const auto& p : next.track.proxies) {
    const bool before = std::any_of(cfg_.track.proxies.begin(), cfg_.track.proxies.end(),
                                    [&](const auto& q) { return q.name == p.name; });
    const bool pending = std::find(proxies_added_by_reload_.begin(), proxies_added_by_reload_.end(), p.name) !=
                         proxies_added_by_reload_.end();
    if ((!before && started_) || pending) added_proxies.push_back(p.name);
  }
  proxies_added_by_reload_ = std::move(added_proxies);
  cfg_ = std::move(next);
  hooks_.set_limits(cfg_.notify.timeout, cfg_.notify.max_running);
  // The machine reads its Config at every step: a new advert_int is used
  // from the next timer on, a new priority from the PriorityChanged that
  // reevaluate() feeds below (RFC 5798 §6.4: as MASTER, sent in the next
  // advert; a peer then preempts or not by the usual rules), new GARP
  // settings from the next GARP sequence.
  set_fsm_config();
  auth_.type = cfg_.auth_type == cfg::AuthType::pass ? AuthType::pass : AuthType::none;
  auth_.password = cfg_.auth_password;
  // Unicast peers: whom the next advert goes to, whom the intake hears
  // (the checksum form, too, is read at every send).
  peers_.clear();
  for (const auto& p : cfg_.unicast_peers)
    if (auto ip = IpAddress::parse(p)) peers_.push_back(*ip);
  if (interfaces_changed) {
    tracked_if_up_.assign(cfg_.track.interfaces.size(), false);
    for (std::size_t i = 0; i < cfg_.track.interfaces.size(); ++i) {
      auto l = env_.kernel.link(cfg_.track.interfaces[i].name);
      tracked_if_up_[i] = l && l->up;
    }
  }
  if (scripts_changed) {
    // A script whose definition did not change keeps its object (its
    // rise/fall state and its run in flight), so an unrelated edit cannot
    // drop the priority for a moment and move the VIP. New ones count for
    // nothing until their first result: counted as failing (as at start,
    // track::RiseFall), a new weight-0 script put a MASTER in FAULT at once
    // (priority 0, VIPs removed) before it had run at all, and adding a
    // check to both nodes together left the VIP on neither.
    std::vector<std::unique_ptr<Script>> kept;
    for (const auto& sc : cfg_.track.scripts) {
      std::unique_ptr<Script> found;
      for (auto& old : scripts_)
        if (old && old->cfg == sc) {
          found = std::move(old);
          break;
        }
      if (!found) {
        found = std::make_unique<Script>(env_.io, sc);
        found->added_by_reload = started_;
      }
      kept.push_back(std::move(found));
    }
    // A removed script's run in flight is killed: nobody reads its result.
    for (auto& old : scripts_)
      if (old) stop_script(*old);
    scripts_ = std::move(kept);
    // Completions identify their script by index: give every kept script a
    // fresh token and start each one again (a kept script's run in flight is
    // killed, its next run comes now, so no two runs of one script overlap;
    // its rise/fall state stays).
    for (auto& sc : scripts_) {
      stop_script(*sc);
      sc->token = std::make_shared<int>(0);
    }
    if (started_ && !stopped_)
      for (std::size_t i = 0; i < scripts_.size(); ++i) run_script(i);
  }
  if (vips_changed && started_ && !stopped_) retarget_vips();  // engine_vips.cpp
  spdlog::info("vrrp {}: reconfigured in place (priority {}, advert_int {} ms, preempt {})", cfg_.name,
               cfg_.priority, cfg_.advert_int.count(), cfg_.preempt ? "on" : "off");
  reevaluate();
}

fsm::TimePoint Engine::now() const {
  return std::chrono::duration_cast<fsm::TimePoint>(Clock::now() - epoch_);
}

void Engine::refresh_link() {
  auto l = env_.kernel.link(cfg_.interface);
  if (!l) {
    link_.up = false;
    return;
  }
  link_ = *l;
  if (!cfg_.unicast_src_ip.empty()) {
    src_ = IpAddress::parse(cfg_.unicast_src_ip);
  } else {
    // The advert source is the interface's own primary address (RFC 5798
    // §5.1.1.1 "the primary IPv4 address of the interface"), never a VIP:
    // a VIP moves, and the tie-break of §6.4.3 compares primaries.
    if (family_ == Family::ipv6) {
      // RFC 5798 §5.1.2.1: the source is the interface's link-local address.
      // The kernel removes it while the link is down and re-adds the same
      // (MAC-derived) one when it comes up, possibly after the link event:
      // keep the last one we knew (the channel is bound to it) rather than
      // FAULT on a transient gap (address additions are not watched).
      if (!link_.link_local_v6.empty()) src_ = link_.link_local_v6.front();
    } else {
      src_.reset();
      for (const auto& a : link_.primary_v4) {
        bool is_vip = std::any_of(vips_.begin(), vips_.end(), [&](const Vip& v) { return v.address == a; });
        if (!is_vip) {
          src_ = a;
          break;
        }
      }
    }
  }
  if (src_) fsm_cfg_.primary_address = *src_;
}

void Engine::start() {
  prepare();
  launch();
}

void Engine::prepare() {
  const std::string who = "vrrp " + cfg_.name;
  for (const auto& va : cfg_.virtual_ipaddresses) {
    Vip v;
    auto ip = IpAddress::parse(va.address);
    if (!ip) throw std::runtime_error(who + ": bad virtual address " + va.address);
    if (vips_.empty()) family_ = ip->family;
    if (ip->family != family_)
      throw std::runtime_error(who + ": IPv4 and IPv6 virtual addresses cannot share an instance (" + va.address +
                               "); use one instance per family");
    if (family_ == Family::ipv6 && cfg_.version != 3)
      throw std::runtime_error(who + ": IPv6 virtual addresses need version: 3 (VRRPv2 is IPv4 only)");
    v.address = *ip;
    v.prefix_len = va.prefix_len;
    v.label = va.label;
    v.device = va.device.empty() ? cfg_.interface : va.device;
    auto l = env_.kernel.link(v.device);
    if (!l) throw std::runtime_error(who + ": interface " + v.device + " (for " + va.address + ") does not exist");
    v.ifindex = l->ifindex;
    check_not_taken(v, va.where);
    vips_.push_back(v);
    vip_slots_.emplace_back();
    vip_addresses_.push_back(v.address);
  }
  refresh_link();
  if (link_.ifindex == 0) throw std::runtime_error(who + ": interface " + cfg_.interface + " does not exist");
  if (!src_)
    spdlog::warn("{}: {} has no {} address to send adverts from; FAULT until it has one", who, cfg_.interface,
                 family_ == Family::ipv4 ? "IPv4" : "IPv6 link-local");
  if (family_ == Family::ipv6 && !src_)
    throw std::runtime_error(who + ": " + cfg_.interface + " has no IPv6 link-local address (is IPv6 disabled?)");
  channel_ = open_channel();
  channel_ifindex_ = link_.ifindex;
}

void Engine::check_not_taken(const Vip& v, const std::string& where) {
  // launch() removes every VIP, as keepalived does at start, and leaving
  // MASTER removes them again: an address the host had for its own would go
  // with them, and the node (its proxy, its backends) off the network.
  const bool held = env_.held_by_running && env_.held_by_running(v);
  const auto entries = held ? std::nullopt : env_.kernel.address_entries(v);
  const vips::Claim claim = vips::claim_at_start(entries, held);
  const std::string addr = v.address.to_string();
  if (claim == vips::Claim::free || claim == vips::Claim::ours) {
    check_not_elsewhere(v, where);
    return;
  }
  std::string have;
  if (entries)
    for (const auto& e : *entries)
      have += (have.empty() ? "" : ", ") + addr + "/" + std::to_string(e.prefix_len) +
              (e.protocol ? " proto " + std::to_string(e.protocol) : std::string());
  std::string why =
      (where.empty() ? "vrrp " + cfg_.name + ": virtual_ipaddresses" : where) + ": " +
      (claim == vips::Claim::unknown
           ? "cannot ask the kernel which addresses " + v.device + " has, so whether " + addr +
                 " is already one of the host's own cannot be told; not started (an instance removes its VIPs "
                 "when it starts)"
           : addr + " is already an address of " + v.device + " (" + have +
                 ") and vipproxy did not add it: the host's own address, or another program's. A VIP must be "
                 "an address no host has for its own: vipproxy adds it as MASTER and removes it otherwise (and "
                 "at start), which would take this address off the node; left in place, it would answer ARP "
                 "beside the MASTER while this node is BACKUP or stopped. Nothing was changed; use a free "
                 "address as the VIP");
  if (claim == vips::Claim::not_ours && cfg_.priority == 255)
    why += ". priority 255 is taken as keepalived does (MASTER at once, always preempts), with a VIP that is a "
           "free address: vipproxy does not run the RFC 5798 address owner whose VIP is the host's own address";
  if (claim == vips::Claim::not_ours)
    why += ". If it is a VIP an earlier run left (killed, on a kernel older than 5.18 that keeps no mark of ours), "
           "remove it by hand: ip address del " + addr + "/" +
           std::to_string(entries && !entries->empty() ? entries->front().prefix_len : v.prefix_len) + " dev " +
           v.device;
  throw std::runtime_error(why);
}

void Engine::check_not_elsewhere(const Vip& v, const std::string& where) {
  // The same address on another device (vips::taken_elsewhere): as BACKUP
  // this node would answer ARP for the VIP through it, as MASTER two devices
  // would have it. Never touched: we add and delete on v.device only.
  const std::string addr = v.address.to_string();
  const std::string key = where.empty() ? "vrrp " + cfg_.name + ": virtual_ipaddresses" : where;
  const auto others = env_.kernel.address_elsewhere(v);
  if (!others)
    throw std::runtime_error(key + ": cannot ask the kernel which devices have " + addr + ", so whether it is "
                             "already one of the host's own addresses cannot be told; not started");
  const auto taken = vips::taken_elsewhere(v.address, *others, [&](const vips::Elsewhere& e) {
    if (!env_.held_by_running) return false;
    Vip there = v;
    there.device = e.device;
    there.ifindex = e.ifindex;
    return env_.held_by_running(there);
  });
  if (taken.empty()) return;
  std::string have;
  bool marked = false;
  for (const auto& e : taken) {
    have += (have.empty() ? "" : ", ") + addr + "/" + std::to_string(e.entry.prefix_len) + " on " + e.device +
            (e.entry.protocol ? " proto " + std::to_string(e.entry.protocol) : std::string());
    marked = marked || e.entry.protocol == vips::kVipAddressProtocol;
  }
  const auto& first = taken.front();
  std::string why = key + ": " + addr + " is already an address of " + first.device + " (" + have +
                    "), not of " + v.device + " where it would be the VIP: this host answers for it already " +
                    "(Linux answers ARP for any of its addresses on every interface), so as BACKUP it would " +
                    "answer beside the MASTER, and as MASTER two devices would have it; vipproxy never touches " +
                    "another device's address. Nothing was changed; use a free address as the VIP";
  if (marked)
    why += ". It carries vipproxy's mark (proto 112): a VIP an earlier run left on " + first.device +
           " (another configuration); if no vipproxy runs with it, remove it: ip address del " + addr + "/" +
           std::to_string(first.entry.prefix_len) + " dev " + first.device;
  throw std::runtime_error(why);
}

std::unique_ptr<Channel> Engine::open_channel() {
  std::weak_ptr<int> alive = life_;
  return env_.kernel.open_channel(link_, family_, src_ ? *src_ : IpAddress{}, !cfg_.unicast,
                                  [this, alive](const Received& d) {
    if (!alive.expired()) on_datagram(d);
  });
}

bool Engine::rebind_channel() {
  if (!link_.up || link_.ifindex == 0) return false;
  if (channel_ && channel_ifindex_ == link_.ifindex) return false;
  if (channel_)
    spdlog::warn("vrrp {}: {} came back with ifindex {} (was {}): re-opening the VRRP socket", cfg_.name,
                 cfg_.interface, link_.ifindex, channel_ifindex_);
  // Closed first: a socket bound to a deleted device must not outlive a
  // failed re-open (it would hear nothing and we would take over).
  channel_.reset();
  try {
    channel_ = open_channel();
    channel_ifindex_ = link_.ifindex;
    channel_error_.clear();
  } catch (const std::exception& ex) {
    channel_error_ = ex.what();
    spdlog::error("vrrp {}: cannot re-open the VRRP socket: {}", cfg_.name, channel_error_);
  }
  return true;
}

void Engine::launch() {
  const std::string who = "vrrp " + cfg_.name;
  for (std::size_t i = 0; i < cfg_.track.interfaces.size(); ++i) {
    auto l = env_.kernel.link(cfg_.track.interfaces[i].name);
    tracked_if_up_[i] = l && l->up;
  }
  // keepalived removes its VIPs at start too: a run killed with SIGKILL
  // leaves them configured (docs/lab-notes.md, "keepalived 2.2.7"), and a BACKUP holding the VIP would
  // answer ARP for it alongside the real master.
  started_ = true;
  remove_vips();
  spdlog::info("{}: interface {} ({}), VRID {}, priority {}, VRRPv{}, advert_int {} ms, {}{}", who,
               cfg_.interface, src_ ? src_->to_string() : "no address", cfg_.virtual_router_id, cfg_.priority,
               cfg_.version, cfg_.advert_int.count(),
               cfg_.unicast ? "unicast" : family_ == Family::ipv4 ? "multicast 224.0.0.18" : "multicast ff02::12",
               fsm_cfg_.start_as_master_hint ? ", state master (hint: waits Master_Down_Interval like keepalived)"
                                             : "");
  for (std::size_t i = 0; i < scripts_.size(); ++i) run_script(i);
  reevaluate();
  if (vars_.state == fsm::State::initialize) feed(fsm::Startup{});
}

bool Engine::fault_reason(std::string* why) const {
  if (why) *why = fault_why_.empty() && vars_.send_fault ? send_fault_why() : fault_why_;
  return vars_.state == fsm::State::fault;
}

void Engine::reevaluate() {
  if (!started_ || stopped_) return;
  std::vector<track::Input> in;
  std::string why;
  auto add = [&](int weight, bool ok, const std::string& what) {
    in.push_back({weight, ok});
    if (weight == 0 && !ok) why += (why.empty() ? "" : ", ") + what;
  };
  add(0, link_.up, "interface " + cfg_.interface + " down");
  add(0, src_.has_value(),
      (family_ == Family::ipv4 ? "no IPv4 address on " : "no IPv6 link-local address on ") + cfg_.interface);
  add(0, !vip_fault_, vip_fault_why_);  // engine_vips.cpp
  add(0, channel_ != nullptr, "no VRRP socket on " + cfg_.interface + ": " + channel_error_);  // rebind_channel
  for (const auto& p : cfg_.track.proxies) {
    const std::optional<bool> healthy = env_.proxy_healthy ? env_.proxy_healthy(p.name) : std::optional<bool>(false);
    auto pending = std::find(proxies_added_by_reload_.begin(), proxies_added_by_reload_.end(), p.name);
    if (pending != proxies_added_by_reload_.end()) {
      if (!healthy) continue;  // added by a reload, no check answered yet (reconfigure)
      proxies_added_by_reload_.erase(pending);
    }
    add(p.weight, healthy.value_or(false), "proxy " + p.name + " unhealthy");
  }
  for (std::size_t i = 0; i < cfg_.track.interfaces.size(); ++i)
    add(cfg_.track.interfaces[i].weight, tracked_if_up_[i], "interface " + cfg_.track.interfaces[i].name + " down");
  for (const auto& s : scripts_)
    if (s->rf.known() || !s->added_by_reload) add(s->cfg.weight, s->rf.ok(), "script " + s->cfg.name + " failing");
  auto r = track::apply(cfg_.priority, in);
  fault_why_ = why;
  // Priority first: leaving FAULT is a fresh Startup that must already use
  // the new priority for its skew time.
  if (r.priority != vars_.priority) feed(fsm::PriorityChanged{uint8_t(r.priority)});
  // The fsm keeps a weight-0 input's FAULT apart from the one of adverts
  // that cannot be sent (Vars::track_fault, send_fault).
  if (r.fault && !vars_.track_fault) {
    spdlog::warn("vrrp {}: fault: {}", cfg_.name, why);
    feed(fsm::Fault{});
  } else if (!r.fault && vars_.track_fault) {
    spdlog::info("vrrp {}: fault cleared", cfg_.name);
    feed(fsm::FaultCleared{});
  }
}

void Engine::feed(const fsm::Event& e) {
  if (stopped_) return;
  const fsm::State before = vars_.state;
  auto s = fsm::step(fsm_cfg_, vars_, e, now());
  const bool was_send_fault = vars_.send_fault;
  vars_ = s.vars;
  if (!was_send_fault && vars_.send_fault) {
    ++counters_.mute_master_faults;
    spdlog::error("vrrp {}: fault: {}", cfg_.name, send_fault_why());
  }
  for (const auto& a : s.actions) {
    if (auto* n = std::get_if<fsm::NotifyState>(&a)) {
      notify(before, n->state);
      continue;
    }
    execute(a);
  }
  // After the step's actions, not among them: a step fed from inside the
  // loop would have its timers overridden by the rest of this one.
  if (auto r = std::exchange(send_result_, std::nullopt)) feed(fsm::AdvertSent{*r});
  // send_error_ is why the adverts fail while the engine sends them: as
  // MASTER, and in the FAULT of refused sends (its priority-0 probes). Left
  // for another reason (a higher priority heard, a track input), the engine
  // is silent and an old error in /status would point at a fault that no
  // longer matters; advert_send_failures keeps the count. The next MASTER whose sends fail says so at once again.
  const bool sending = vars_.state == fsm::State::master || (vars_.state == fsm::State::fault && vars_.send_fault);
  if (!sending && !send_error_.empty()) {
    if (vars_.state != fsm::State::initialize)  // stopping: not news
      spdlog::info("vrrp {}: no longer sending adverts ({}); the last send had failed: {}", cfg_.name,
                   fsm::to_string(vars_.state), send_error_);
    send_error_.clear();
    send_log_ = {};
  }
}

std::string Engine::send_fault_why() const {
  return "adverts cannot be sent on " + cfg_.interface + " (" + (send_error_.empty() ? "?" : send_error_) +
         ") and " + (vars_.master_address ? vars_.master_address->to_string() : std::string("another router")) +
         " is MASTER: the VIPs are its until a send works";
}

void Engine::arm_fsm_timer(fsm::Duration d, uint64_t generation, bool master_down) {
  fsm_timer_.expires_after(d);
  std::weak_ptr<int> alive = life_;
  fsm_timer_.async_wait([this, alive, generation, master_down](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    // The generation makes an expiry that raced with a reset harmless: the
    // fsm ignores any generation but the latest (fsm.h).
    if (master_down) feed(fsm::MasterDownTimerFired{generation});
    else feed(fsm::AdvertTimerFired{generation});
  });
}

void Engine::arm_garp_timer(fsm::Duration d, uint64_t generation) {
  garp_timer_.expires_after(d);
  std::weak_ptr<int> alive = life_;
  garp_timer_.async_wait([this, alive, generation](const boost::system::error_code& ec) {
    if (!ec && !alive.expired()) feed(fsm::GarpTimerFired{generation});
  });
}

void Engine::execute(const fsm::Action& action) {
  std::visit(Overload{
                 [&](const fsm::SendAdvert& a) { send_advert(a.priority); },
                 [&](const fsm::SendAdvertPriorityZero&) { send_advert(fsm::kStopPriority); },
                 [&](const fsm::StartAdvertTimer& t) { arm_fsm_timer(t.delay, t.generation, false); },
                 [&](const fsm::StartMasterDownTimer& t) { arm_fsm_timer(t.delay, t.generation, true); },
                 [&](const fsm::CancelTimers&) { fsm_timer_.cancel(); },
                 [&](const fsm::AddVips&) { add_vips(); },
                 [&](const fsm::RemoveVips&) { remove_vips(); },
                 [&](const fsm::SendGarp&) { garp_round(); },
                 [&](const fsm::NotifyState&) {},
                 [&](const fsm::StartGarpTimer& t) { arm_garp_timer(t.delay, t.generation); },
                 [&](const fsm::CancelGarpTimer&) { garp_timer_.cancel(); },
             },
             action);
}

void Engine::notify(fsm::State from, fsm::State to) {
  if (from != to) {
    ++counters_.transitions;
    if (to == fsm::State::master) ++counters_.became_master;
  }
  spdlog::info("vrrp {}: {} -> {} (priority {}{})", cfg_.name, fsm::to_string(from), fsm::to_string(to),
               vars_.priority,
               to == fsm::State::backup && vars_.master_address
                   ? ", master " + vars_.master_address->to_string()
                   : std::string());
  const auto& n = cfg_.notify;
  const std::string* cmd = to == fsm::State::master   ? &n.master
                           : to == fsm::State::backup ? &n.backup
                           : to == fsm::State::fault  ? &n.fault
                                                      : &n.stop;
  // keepalived's notify arguments: INSTANCE <name> <STATE> <priority>.
  // Hooks run detached from the state machine: a slow or hung script never
  // delays a transition (they are observers, docs/design.md "Code shape");
  // hooks_ bounds their life and how many run at once.
  std::vector<std::string> args{"INSTANCE", cfg_.name, notify_state(to), std::to_string(vars_.priority)};
  for (const std::string* c : {cmd, &n.any})
    if (!c->empty()) hooks_.run(*c, args);
}

void Engine::on_link(const LinkInfo& l) {
  if (!started_ || stopped_) return;
  bool changed = false;
  if (l.name == cfg_.interface || (l.ifindex == link_.ifindex && l.name.empty())) {
    bool was_up = link_.up;
    bool had_src = src_.has_value();
    if (l.up) refresh_link();
    else link_.up = false;
    changed = was_up != link_.up || had_src != src_.has_value();
    if (rebind_channel()) changed = true;
    if (changed) spdlog::info("vrrp {}: interface {} is {}", cfg_.name, cfg_.interface, link_.up ? "up" : "down");
  }
  for (std::size_t i = 0; i < cfg_.track.interfaces.size(); ++i) {
    if (cfg_.track.interfaces[i].name != l.name) continue;
    if (tracked_if_up_[i] != l.up) {
      tracked_if_up_[i] = l.up;
      changed = true;
      spdlog::info("vrrp {}: tracked interface {} is {}", cfg_.name, l.name, l.up ? "up" : "down");
    }
  }
  if (changed) reevaluate();
  vip_link_event(l);  // a VIP's device may have come back (engine_vips.cpp)
}

void Engine::on_address_removed(int ifindex, const IpAddress& address) {
  if (!started_ || stopped_) return;
  if (src_ && ifindex == link_.ifindex && address == *src_) {
    // Our advert source vanished: pick another primary, or FAULT.
    refresh_link();
    reevaluate();
    return;
  }
  // Someone ran `ip addr del` (or a network manager "cleaned up"), or it
  // is the echo of our own delete: the kernel says which (engine_vips.cpp).
  vip_event(ifindex, address);
}

void Engine::on_address_added(int ifindex, const IpAddress& address) {
  if (!started_ || stopped_) return;
  if (ifindex == link_.ifindex && (!src_ || !channel_)) {
    // FAULT for want of an advert source (IPv4: removed, or none at start)
    // or of a socket (IPv6: the link-local of a recreated interface, after
    // DAD): this address may be what was missing. refresh_link never picks
    // one of our VIPs.
    const bool had_src = src_.has_value();
    refresh_link();
    if (src_ && !had_src)
      spdlog::info("vrrp {}: {} has {} again: adverts from it", cfg_.name, cfg_.interface, src_->to_string());
    rebind_channel();
    reevaluate();
  }
  vip_event(ifindex, address);
}

void Engine::resync() {
  if (!started_ || stopped_) return;
  refresh_link();
  rebind_channel();
  for (std::size_t i = 0; i < cfg_.track.interfaces.size(); ++i) {
    auto l = env_.kernel.link(cfg_.track.interfaces[i].name);
    tracked_if_up_[i] = l && l->up;
  }
  reevaluate();
  for (auto& sl : vip_slots_) vips::forget(sl, vips_wanted_, now());
  reconcile(true);
}

void Engine::run_script(std::size_t i) {
  auto& s = *scripts_[i];
  if (stopped_ || s.running) return;
  s.running = true;
  ++counters_.script_runs;
  std::weak_ptr<int> alive = s.token;
  s.run_id = env_.spawner.run(Spawner::shell(s.cfg.command), s.cfg.user, s.cfg.timeout,
                   [this, alive, i](const ChildExit& r) {
                     // Cancelled: the instance stopped or replaced the run.
                     if (alive.expired() || r.cancelled) return;
                     auto& s = *scripts_[i];
                     s.running = false;
                     if (r.timed_out) ++counters_.script_timeouts;
                     if (!r.started)
                       spdlog::error("vrrp {}: track script {} did not start: {}", cfg_.name, s.cfg.name, r.detail);
                     // The first result counts even when it does not change
                     // ok(): a script added by a reload counted for nothing
                     // until now (reevaluate).
                     const bool first = !s.rf.known();
                     const bool changed = s.rf.result(r.success());
                     if (changed)
                       spdlog::info("vrrp {}: track script {} is now {}{}", cfg_.name, s.cfg.name,
                                    s.rf.ok() ? "OK" : "failing", r.timed_out ? " (timed out)" : "");
                     if (changed || first) reevaluate();
                     if (stopped_) return;
                     s.timer.expires_after(s.cfg.interval);
                     s.timer.async_wait([this, alive, i](const boost::system::error_code& ec) {
                       if (!ec && !alive.expired()) run_script(i);
                     });
                   });
}

void Engine::shutdown() {
  if (stopped_) return;
  // Hooks of earlier transitions still waiting are stale now; the "stop"
  // hook that Shutdown asks for starts at once.
  hooks_.stopping();
  if (started_) feed(fsm::Shutdown{});
  // Whatever the state, leave no VIP behind (a FAULT or BACKUP never holds
  // one, but removing is idempotent and cheap).
  if (started_) final_vip_removal();
  stopped_ = true;
  fsm_timer_.cancel();
  garp_timer_.cancel();
  vip_timer_.cancel();
  // Track scripts in flight are killed (their result is read by nobody
  // now); the notify hooks, the "stop" one included, run to their end or
  // timeout.
  for (auto& s : scripts_) stop_script(*s);
  channel_.reset();
}

void Engine::stop_script(Script& s) {
  s.timer.cancel();
  if (s.running) env_.spawner.cancel(s.run_id);
  s.running = false;
}

json::object Engine::status() const {
  json::object o;
  o["name"] = cfg_.name;
  o["interface"] = cfg_.interface;
  o["state"] = fsm::to_string(vars_.state);
  o["virtual_router_id"] = cfg_.virtual_router_id;
  o["version"] = cfg_.version;
  o["priority"] = vars_.priority;
  o["configured_priority"] = cfg_.priority;
  o["source_address"] = src_ ? json::value(src_->to_string()) : json::value(nullptr);
  o["master_address"] =
      vars_.master_address ? json::value(vars_.master_address->to_string()) : json::value(nullptr);
  o["master_priority"] = vars_.master_priority;
  o["link_up"] = link_.up;
  std::string why;
  o["fault_reason"] = fault_reason(&why) ? json::value(why) : json::value(nullptr);
  // While adverts cannot be sent (sent_result): why, as the kernel said.
  o["advert_send_error"] = send_error_.empty() ? json::value(nullptr) : json::value(send_error_);
  json::array vips;
  for (const auto& v : vips_) vips.push_back(json::value(v.address.to_string() + "/" + std::to_string(v.prefix_len)));
  o["virtual_ipaddresses"] = std::move(vips);
  json::array vstate;
  for (const auto& v : vip_states()) {
    json::object vo;
    vo["address"] = v.address;
    vo["device"] = v.device;
    vo["desired"] = v.desired ? "present" : "absent";
    vo["actual"] = std::string(vips::to_string(v.actual));
    vo["failed_attempts"] = v.failures;
    vo["last_error"] = v.last_error.empty() ? json::value(nullptr) : json::value(v.last_error);
    vstate.push_back(std::move(vo));
  }
  o["vips"] = std::move(vstate);
  o["last_peer"] = last_peer_ ? json::value(last_peer_->to_string()) : json::value(nullptr);
  // Which VRRPv3 IPv4 checksum form the peer uses (docs/design.md): keepalived
  // sends the RFC 5798 pseudo-header form, RFC 9568 peers the message only.
  o["peer_checksum"] = !peer_checksum_form_ ? json::value(nullptr)
                       : *peer_checksum_form_ == ChecksumForm::pseudo_header ? json::value("pseudo_header")
                                                                             : json::value("message_only");
  const Counters all = counters();
#define VIPPROXY_VRRP_JSON(name, help) o[#name] = all.name;
  VIPPROXY_VRRP_COUNTERS(VIPPROXY_VRRP_JSON)
#undef VIPPROXY_VRRP_JSON
  json::object drops;
#define VIPPROXY_VRRP_JSON(name, help) drops[#name] = drops_.name;
  VIPPROXY_VRRP_DROPS(VIPPROXY_VRRP_JSON)
#undef VIPPROXY_VRRP_JSON
  o["drops"] = std::move(drops);
  o["foreign_routers"] = foreign_status();
  json::array scripts;
  for (const auto& s : scripts_) {
    json::object so;
    so["name"] = s->cfg.name;
    so["state"] = !s->rf.known() ? "unknown" : s->rf.ok() ? "OK" : "failing";
    so["weight"] = s->cfg.weight;
    scripts.push_back(std::move(so));
  }
  o["track_scripts"] = std::move(scripts);
  return o;
}

}  // namespace vrrp
