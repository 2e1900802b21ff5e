// One VRRP instance at run time: executes the actions of the pure state
// machine (vrrp/fsm) against a Kernel, on the control io_context. It owns
// the instance's timers (each expiry carries the fsm generation, so a stale
// tick is ignored), its raw channel, its track inputs and its counters.
// Critical work (VIPs, GARP, adverts) runs inside the fsm's action order;
// logs, notify hooks and counters observe NotifyState afterwards.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cfg/config.h"
#include "vrrp/clock.h"
#include "vrrp/codec.h"
#include "vrrp/counters.h"
#include "vrrp/foreign.h"
#include "vrrp/intake.h"
#include "vrrp/fsm.h"
#include "vrrp/kernel.h"
#include "vrrp/spawn.h"
#include "vrrp/track.h"
#include "vrrp/vips.h"

namespace vrrp {

class Engine {
 public:
  struct Env {
    boost::asio::io_context& io;
    Kernel& kernel;
    Spawner& spawner;
    // nullopt: no check of the proxy has answered yet (Service::ProxyHealthy).
    std::function<std::optional<bool>(const std::string& proxy)> proxy_healthy;
    std::string node;
    // Whether a running instance of this daemon has `vip` (same address,
    // same device): a reload that restarts an instance, or moves a VIP to
    // another one, finds it on the interface and it is ours
    // (vips::claim_at_start). Null: none runs.
    std::function<bool(const Vip& vip)> held_by_running = nullptr;
  };

  Engine(Env env, cfg::VrrpInstance config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Resolves the interface and addresses, opens the channel (throws
  // std::exception naming the instance on failure), removes VIPs a crashed
  // earlier run may have left, then Startup (or Fault): prepare(), launch().
  void start();
  // The part of start() that can fail, changing nothing in the kernel (no
  // address touched, no advert sent): a reload opens a restarted instance's
  // socket with this while the old instance still runs, and keeps the old
  // one when it throws. Throws too when a VIP is already on its device and
  // is not ours (vips::claim_at_start: the host's own address): never
  // removed, the instance is not started.
  void prepare();
  // The rest of start(): cannot fail.
  void launch();
  // RFC 5798 §6.4.3 Shutdown: as MASTER a priority-0 advert and the VIPs
  // removed, synchronously; then every timer and socket of the instance is
  // closed so the io_context can run dry.
  void shutdown();

  // Inputs.
  void on_datagram(const Received& rx);  // classified by vrrp/intake
  void on_link(const LinkInfo& link);
  void on_address_removed(int ifindex, const IpAddress& address);
  void on_address_added(int ifindex, const IpAddress& address);
  void reevaluate();  // track inputs may have changed
  // Link/address events may have been lost: re-read links, and check every
  // VIP against the kernel (desired vs. actual, engine_vips.cpp).
  void resync();
  // SIGHUP: takes a changed configuration of this instance in place (the
  // caller checked !cfg::vrrp_needs_restart): priority, advert_int, preempt,
  // authentication, unicast peers, checksum form, track inputs, notify
  // hooks, GARP. The state stays; the
  // election decides from the next advert on.
  void reconfigure(cfg::VrrpInstance next);

  const cfg::VrrpInstance& config() const { return cfg_; }
  // Launched and not shut down, with `vip` among its VIPs (address and device).
  bool running_with(const Vip& vip) const;
  fsm::State state() const { return vars_.state; }
  const fsm::Vars& vars() const { return vars_; }
  // By value: the notify counters live in hooks_ (hooks outlive a
  // restarted engine).
  Counters counters() const {
    Counters c = counters_;
    c.notify_runs = hooks_.stats().started;
    c.notify_timeouts = hooks_.stats().timed_out;
    c.notify_dropped = hooks_.stats().dropped;
    return c;
  }
  const Drops& drops() const { return drops_; }
  const NotifyQueue& hooks() const { return hooks_; }
  bool fault_reason(std::string* why) const;
  boost::json::object status() const;

  // Each VIP as desired (present while MASTER) vs. actual (what the kernel
  // confirmed), for /status and /metrics.
  struct VipState {
    std::string address;  // "10.0.0.1/24"
    std::string device;
    bool desired = false;
    vips::Presence actual = vips::Presence::unknown;
    unsigned failures = 0;
    std::string last_error;
  };
  std::vector<VipState> vip_states() const;

 private:
  struct Script;
  // Cancels the script's timer and kills its run in flight, if any.
  void stop_script(Script& s);

  void feed(const fsm::Event& e);
  void execute(const fsm::Action& a);
  void send_advert(uint8_t priority);
  // What became of an advert (any destination took it, or the last error):
  // counted, logged rate-limited, fed to the fsm as AdvertSent (feed).
  void sent_result(bool ok, std::error_code failed, uint8_t priority);
  std::string send_fault_why() const;  // fault_reason while Vars::send_fault
  // engine_vips.cpp: the VIPs' desired state is set by the fsm's AddVips /
  // RemoveVips (every transition) and reconciled with the kernel there, on
  // address and link events, on a timer (retries, periodic checks) and, in
  // the FAULT a master enters when it cannot install its VIPs, by trial.
  void add_vips();
  void remove_vips();
  void reconcile(bool may_give_up);
  void vip_event(int ifindex, const IpAddress& address);
  void vip_link_event(const LinkInfo& link);
  void arm_vip_timer();
  void probe_vips();
  void final_vip_removal();
  // A reload changed the VIPs' prefix lengths, labels or order (the same
  // addresses on the same devices): taken in place.
  void retarget_vips();
  bool vip_present(const Vip& v) const;
  vips::Policy vip_policy() const;
  void garp_round();
  void notify(fsm::State from, fsm::State to);
  void arm_fsm_timer(fsm::Duration d, uint64_t generation, bool master_down);
  void arm_garp_timer(fsm::Duration d, uint64_t generation);
  void set_fsm_config();  // fsm_cfg_ from cfg_
  void drop(const char* reason, uint64_t& counter, const IpAddress* from);
  // An advert from our own source address (vrrp/intake Kind::own): counted
  // and logged, rate-limited (engine_packets.cpp).
  void own_address(const Advert& a);
  // An advert for our VRID that another router's configuration makes us
  // ignore (vrrp/codec classify_advert): counted, logged per sender
  // (vrrp/foreign.h), shown in /status. engine_foreign.cpp.
  void misconfigured(const IpAddress& src, const Advert& a, const Intake& in, uint64_t* counter);
  boost::json::array foreign_status() const;
  void run_script(std::size_t i);
  void refresh_link();
  // prepare(): throws when `v` is already on its device and is not ours
  // (vips::claim_at_start), naming `where` (the file, line and key).
  void check_not_taken(const Vip& v, const std::string& where);
  // ... or is an address of another device of the host
  // (vips::taken_elsewhere).
  void check_not_elsewhere(const Vip& v, const std::string& where);
  // The raw channel, bound to the interface as it is now (throws).
  std::unique_ptr<Channel> open_channel();
  // Re-opens the channel when the interface came back with another ifindex
  // (deleted and created again: the old socket hears nothing more) or when
  // an earlier re-open failed. True when it tried.
  bool rebind_channel();
  fsm::TimePoint now() const;

  Env env_;
  cfg::VrrpInstance cfg_;
  fsm::Config fsm_cfg_;
  fsm::Vars vars_;
  AuthExpect auth_;
  LinkInfo link_;
  // The instance's family, from its VIPs (keepalived: an instance is IPv6
  // when its virtual addresses are). IPv6 is VRRPv3 only (RFC 5798).
  Family family_ = Family::ipv4;
  std::optional<IpAddress> src_;
  std::vector<IpAddress> peers_;
  std::vector<Vip> vips_;
  std::vector<vips::Slot> vip_slots_;     // parallel to vips_
  bool vips_wanted_ = false;              // desired: present (MASTER)
  fsm::TimePoint vips_verified_{};        // last check against the kernel
  // A master that could not install its VIPs within the bound gave the
  // mastership away: a weight-0 track input (FAULT) until a trial add works.
  bool vip_fault_ = false;
  std::string vip_fault_why_;
  unsigned probe_failures_ = 0;
  fsm::TimePoint probe_at_{};
  std::vector<IpAddress> vip_addresses_;  // what our adverts list, for the intake check
  ForeignRouters foreign_;
  bool started_ = false;
  bool stopped_ = false;
  std::unique_ptr<Channel> channel_;
  int channel_ifindex_ = 0;    // the device channel_ is bound to
  std::string channel_error_;  // why re-opening it failed (FAULT meanwhile)
  Timer fsm_timer_, garp_timer_;
  Timer vip_timer_;
  std::vector<bool> tracked_if_up_;
  std::vector<std::unique_ptr<Script>> scripts_;
  // track.proxies entries a reload added to the running instance: they
  // count for nothing until one of the proxy's checks has answered
  // (reconfigure, reevaluate), as a script added by a reload.
  std::vector<std::string> proxies_added_by_reload_;
  NotifyQueue hooks_;
  Counters counters_;
  Drops drops_;
  std::optional<ChecksumForm> peer_checksum_form_;
  std::optional<IpAddress> last_peer_;
  // The last send_advert's outcome, fed to the fsm as AdvertSent once the
  // actions of the step that sent it are done (feed).
  std::optional<bool> send_result_;
  std::string send_error_;  // why the adverts fail, while they do
  Clock::time_point epoch_ = Clock::now();
  // One log line per period, the events held back meanwhile said with the
  // next: a flood of junk, reflected adverts or failing sends must not
  // flood the log.
  struct LogThrottle {
    std::optional<Clock::time_point> last;
    uint64_t held = 0;
    // nullopt: not now (counted); else how many were held back since the
    // last line.
    std::optional<uint64_t> due(Clock::time_point now, Clock::duration period) {
      if (last && now - *last < period) {
        ++held;
        return std::nullopt;
      }
      last = now;
      return std::exchange(held, 0);
    }
  };
  LogThrottle drop_log_, own_log_, send_log_;  // drop, own_address, sent_result
  // A VIP removed behind our back while MASTER / added while not (reconcile).
  LogThrottle vip_readded_log_, vip_removed_log_;
  // Late GARP bursts, spaced (reconcile): when the last was sent, and
  // whether an address added since is still to be announced.
  std::optional<fsm::TimePoint> late_garp_at_;
  bool late_garp_due_ = false;
  std::string fault_why_;
  // Handlers posted to the io_context hold a weak copy: a completion that
  // arrives after the engine is gone does nothing.
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

}  // namespace vrrp
