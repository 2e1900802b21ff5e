// The engine's VIPs as desired vs. actual state (issue 10 item 2). The fsm
// says what is desired (AddVips / RemoveVips on every transition); what the
// kernel has is known only from its answers: the netlink ACK of an add or
// delete, or an RTM_GETADDR dump (vrrp/vips.h keeps the bookkeeping pure).
// Reconciled on every transition, on address and link events, and on a
// timer: retries with back-off, and a check against the kernel every advert
// interval as MASTER, every 5 s otherwise. A master that cannot install its
// VIPs within three advert intervals gives the mastership away (priority 0,
// then FAULT with the kernel's reason) and leaves FAULT when a trial add
// shows the address can be added again.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>

#include "vrrp/engine.h"

namespace vrrp {

using namespace std::chrono_literals;

namespace {

std::string name_of(const Vip& v) { return v.address.to_string() + "/" + std::to_string(v.prefix_len); }

// A failure is logged when it is new (first one, or another error), then
// at most once a minute while it lasts.
constexpr fsm::Duration kFailureLogInterval = std::chrono::minutes(1);
// A fight over a VIP: one line per this, with the count (reconcile).
constexpr auto kVipFightLogInterval = std::chrono::seconds(10);
// Late GARP bursts (an address added after the transition): at most one per
// this (reconcile).
constexpr fsm::Duration kLateGarpSpacing = std::chrono::seconds(1);

// The tail of a rate-limited VIP fight line: how many more since the last.
std::string fight_note(uint64_t held, const char* counter) {
  if (held == 0) return {};
  return " (+" + std::to_string(held) + " more since the last message: another program is changing the address; "
         "counted in " + counter + ")";
}

}  // namespace

vips::Policy Engine::vip_policy() const {
  return vips::policy_for(std::chrono::duration_cast<fsm::Duration>(cfg_.advert_int),
                          vars_.state == fsm::State::master);
}

bool Engine::running_with(const Vip& vip) const {
  if (!started_ || stopped_) return false;
  return std::any_of(vips_.begin(), vips_.end(), [&](const Vip& v) {
    return v.address == vip.address && (v.ifindex == vip.ifindex || v.device == vip.device);
  });
}

bool Engine::vip_present(const Vip& v) const {
  const auto i = std::size_t(&v - vips_.data());
  return i < vip_slots_.size() && vip_slots_[i].actual == vips::Presence::present;
}

std::vector<Engine::VipState> Engine::vip_states() const {
  std::vector<VipState> out;
  for (std::size_t i = 0; i < vips_.size() && i < vip_slots_.size(); ++i) {
    const auto& sl = vip_slots_[i];
    out.push_back({name_of(vips_[i]), vips_[i].device, vips_wanted_, sl.actual, sl.failures, sl.last_error});
  }
  return out;
}

void Engine::add_vips() {
  if (!vips_wanted_)
    for (auto& sl : vip_slots_) vips::want_changed(sl, true, now());
  vips_wanted_ = true;
  reconcile(false);
}

void Engine::remove_vips() {
  if (vips_wanted_)
    for (auto& sl : vip_slots_) vips::want_changed(sl, false, now());
  vips_wanted_ = false;
  reconcile(false);
}

void Engine::vip_event(int ifindex, const IpAddress& address) {
  for (const auto& v : vips_) {
    if (v.ifindex != ifindex || v.address != address) continue;
    // The event may be the echo of our own add or delete, or late: ask the
    // kernel what it has now rather than trusting the event.
    vips_verified_ = fsm::TimePoint::min() / 2;
    reconcile(true);
    return;
  }
}

void Engine::vip_link_event(const LinkInfo& l) {
  bool ours = false;
  for (auto& v : vips_) {
    if (v.device != l.name && v.ifindex != l.ifindex) continue;
    ours = true;
    // A device deleted and created again (a VLAN or bond rebuilt by the
    // network configuration) comes back with another ifindex.
    if (auto now_link = env_.kernel.link(v.device); now_link && now_link->ifindex != v.ifindex) {
      spdlog::info("vrrp {}: {} now has ifindex {} (was {})", cfg_.name, v.device, now_link->ifindex, v.ifindex);
      v.ifindex = now_link->ifindex;
    }
  }
  if (!ours) return;
  if (vip_fault_) probe_at_ = now();  // the cause may be gone: try now
  vips_verified_ = fsm::TimePoint::min() / 2;
  reconcile(true);
}

void Engine::reconcile(bool may_give_up) {
  if (stopped_ || vip_slots_.empty()) return;
  const fsm::TimePoint t = now();
  const vips::Policy pol = vip_policy();
  const bool master = vars_.state == fsm::State::master;

  // Check what we believe against the kernel when due (not inside a
  // transition: the add or delete that follows is idempotent anyway).
  if (may_give_up && t >= vips_verified_ + pol.verify_every) {
    vips_verified_ = t;
    for (std::size_t i = 0; i < vips_.size(); ++i) {
      auto has = env_.kernel.has_address(vips_[i]);
      if (!has) continue;
      auto& sl = vip_slots_[i];
      const vips::Presence before = sl.actual;
      vips::observe(sl, vips_wanted_, *has, t);
      if (vips_wanted_ && before == vips::Presence::present && !*has) {
        // Someone ran `ip addr del` (or a network manager "cleaned up")
        // while we are master: the VIP would be black-holed.
        ++counters_.vip_readded;
        // Rate-limited, as drop(): a program that fights over the address
        // (NetworkManager, a script, a local keepalived) removes it as fast
        // as we add it back, hundreds of times a second. The first line
        // says it, then one per 10 s with the count; counters count all.
        if (const auto held = vip_readded_log_.due(Clock::now(), kVipFightLogInterval))
          spdlog::warn("vrrp {}: {} was removed from {} while MASTER; adding it back{}", cfg_.name,
                       name_of(vips_[i]), vips_[i].device, fight_note(*held, "vip_readded"));
      } else if (!vips_wanted_ && before == vips::Presence::absent && *has) {
        ++counters_.vip_removed_not_master;
        if (const auto held = vip_removed_log_.due(Clock::now(), kVipFightLogInterval))
          spdlog::warn("vrrp {}: {} appeared on {} while {}; removing it (only the master holds it){}", cfg_.name,
                       name_of(vips_[i]), vips_[i].device, fsm::to_string(vars_.state),
                       fight_note(*held, "vip_removed_not_master"));
      }
    }
  }

  bool added_late = false;
  std::vector<bool> tried(vips_.size(), false);
  for (std::size_t i = 0; i < vips_.size(); ++i) {
    auto& sl = vip_slots_[i];
    auto& v = vips_[i];
    const vips::Op op = vips::due(vips_wanted_, sl, t);
    if (op == vips::Op::none) continue;
    tried[i] = true;
    if (op == vips::Op::add && sl.failures > 0)
      if (auto l = env_.kernel.link(v.device)) v.ifindex = l->ifindex;
    const std::error_code ec = op == vips::Op::add ? env_.kernel.add_address(v) : env_.kernel.del_address(v);
    const unsigned failed_before = sl.failures;
    const std::string error_before = sl.last_error;
    vips::record(sl, vips_wanted_, op, ec ? ec.message() : std::string(), t, pol);
    const char* verb = op == vips::Op::add ? "add" : "remove";
    if (ec) {
      ++counters_.vip_errors;
      if (failed_before == 0 || sl.last_error != error_before || t - sl.last_logged >= kFailureLogInterval) {
        sl.last_logged = t;
        spdlog::error("vrrp {}: cannot {} {} {} {}: {} (attempt {}, next in {} ms{})", cfg_.name, verb,
                      name_of(v), op == vips::Op::add ? "to" : "from", v.device, sl.last_error, sl.failures,
                      std::chrono::duration_cast<std::chrono::milliseconds>(sl.retry_at - t).count(),
                      op == vips::Op::add ? (master ? "; MASTER without its address" : "")
                                          : "; the address stays here while we are not MASTER");
      }
    } else {
      if (failed_before > 0)
        spdlog::info("vrrp {}: {} {} {} {} after {} failed attempt(s)", cfg_.name,
                     op == vips::Op::add ? "added" : "removed", name_of(v), op == vips::Op::add ? "to" : "from",
                     v.device, failed_before);
      if (op == vips::Op::add && may_give_up) added_late = true;
    }
  }
  // An address installed after the transition (a retry, or re-added after
  // someone removed it) has not been announced: hosts may still point at
  // the previous master's MAC (RFC 5798 §6.4.2's GARP, late). At most one
  // burst per kLateGarpSpacing: a program fighting over the address made
  // us re-add it hundreds of times a second, each with a burst of
  // garp.master_repeat ARPs (a storm on the LAN). One added meanwhile is
  // announced by the next reconcile after the spacing (the VIP timer wakes
  // us at least every verify_every while MASTER).
  if (added_late && master) late_garp_due_ = true;
  if (!master) late_garp_due_ = false;
  if (late_garp_due_ && (!late_garp_at_ || t - *late_garp_at_ >= kLateGarpSpacing)) {
    late_garp_due_ = false;
    late_garp_at_ = t;
    feed(fsm::VipsInstalledLate{});
  }

  if (may_give_up && !vip_fault_ && master && vips::give_up(vips_wanted_, vip_slots_, t, pol)) {
    // One last try, whatever the back-off, before giving the mastership
    // away: the deadline and a retry often fall together.
    for (std::size_t i = 0; i < vips_.size(); ++i) {
      auto& sl = vip_slots_[i];
      if (sl.actual == vips::Presence::present || tried[i]) continue;
      if (auto l = env_.kernel.link(vips_[i].device)) vips_[i].ifindex = l->ifindex;
      const std::error_code ec = env_.kernel.add_address(vips_[i]);
      vips::record(sl, true, vips::Op::add, ec ? ec.message() : std::string(), t, pol);
      if (ec) ++counters_.vip_errors;
      else feed(fsm::VipsInstalledLate{});
    }
  }
  if (may_give_up && !vip_fault_ && master && vips::give_up(vips_wanted_, vip_slots_, t, pol)) {
    std::string why;
    for (std::size_t i = 0; i < vips_.size(); ++i)
      if (vip_slots_[i].actual != vips::Presence::present)
        why += (why.empty() ? "" : ", ") + std::string("cannot add VIP ") + name_of(vips_[i]) + " to " +
               vips_[i].device + ": " + (vip_slots_[i].last_error.empty() ? "not confirmed" : vip_slots_[i].last_error);
    vip_fault_ = true;
    vip_fault_why_ = why;
    probe_failures_ = 0;
    probe_at_ = t + pol.retry_base;
    spdlog::error("vrrp {}: MASTER without its virtual addresses for {} ms (3 x advert_int): giving the mastership "
                  "away (priority 0, then FAULT until the address can be added)",
                  cfg_.name, std::chrono::duration_cast<std::chrono::milliseconds>(pol.give_up_after).count());
    reevaluate();  // Fault: priority-0 advert, RemoveVips, FAULT (reconciles and re-arms)
    return;
  }
  arm_vip_timer();
}

void Engine::retarget_vips() {
  // cfg_ lists the addresses of vips_ on the same devices (the service
  // restarts the instance otherwise: cfg::vrrp_needs_restart), in its own
  // order and with its own prefix lengths and labels. Slots follow their
  // address.
  std::vector<Vip> next;
  std::vector<vips::Slot> slots;
  std::vector<IpAddress> addresses;
  std::vector<std::size_t> changed;
  for (const auto& va : cfg_.virtual_ipaddresses) {
    const auto ip = IpAddress::parse(va.address);
    std::size_t i = 0;
    while (ip && i < vips_.size() && vips_[i].address != *ip) ++i;
    if (!ip || i == vips_.size()) continue;  // not reached (see above)
    Vip v = vips_[i];
    v.prefix_len = va.prefix_len;
    v.label = va.label;
    if (v.prefix_len != vips_[i].prefix_len || v.label != vips_[i].label) changed.push_back(next.size());
    next.push_back(v);
    slots.push_back(i < vip_slots_.size() ? vip_slots_[i] : vips::Slot{});
    addresses.push_back(v.address);
  }
  if (next.size() != vips_.size()) {
    spdlog::error("vrrp {}: reload changed which virtual addresses the instance has; kept the running ones",
                  cfg_.name);
    return;
  }
  vips_ = std::move(next);
  vip_slots_ = std::move(slots);
  vip_addresses_ = std::move(addresses);
  if (!vips_wanted_ || changed.empty()) return;  // not MASTER: absent either way
  // MASTER: each changed address is taken off (every entry of it, whatever
  // prefix or label: NetlinkKernel::del_address) and put back with its new
  // attributes, then announced again (keepalived does the same at a reload).
  const fsm::TimePoint t = now();
  for (std::size_t i : changed) {
    if (auto ec = env_.kernel.del_address(vips_[i]))
      spdlog::warn("vrrp {}: cannot remove {} to put it back with its new prefix or label: {}", cfg_.name,
                   name_of(vips_[i]), ec.message());
    vips::forget(vip_slots_[i], true, t);
    spdlog::info("vrrp {}: {} on {} with its new prefix length or label", cfg_.name, name_of(vips_[i]),
                 vips_[i].device);
  }
  reconcile(false);
  if (vars_.state == fsm::State::master) feed(fsm::VipsInstalledLate{});
}

void Engine::final_vip_removal() {
  // Shutdown: one more attempt whatever the back-off, then say plainly what
  // stays behind (nobody retries once we are gone).
  for (auto& sl : vip_slots_)
    if (sl.actual != vips::Presence::absent) vips::want_changed(sl, false, now());
  vips_wanted_ = false;
  reconcile(false);
  for (std::size_t i = 0; i < vips_.size() && i < vip_slots_.size(); ++i)
    if (vip_slots_[i].actual != vips::Presence::absent)
      spdlog::error("vrrp {}: stopping with {} possibly left on {} ({}): remove it by hand (ip addr del {} dev {})",
                    cfg_.name, name_of(vips_[i]), vips_[i].device,
                    vip_slots_[i].last_error.empty() ? "not confirmed" : vip_slots_[i].last_error,
                    name_of(vips_[i]), vips_[i].device);
}

void Engine::arm_vip_timer() {
  if (stopped_ || vip_slots_.empty()) return;
  const fsm::TimePoint t = now();
  const vips::Policy pol = vip_policy();
  fsm::TimePoint next = vips::next_wake(vips_wanted_, vip_slots_, vips_verified_, t, pol);
  if (vip_fault_) next = std::min(next, probe_at_);
  const auto delay = std::max<fsm::Duration>(next - t, 1ms);
  vip_timer_.expires_after(delay);
  std::weak_ptr<int> alive = life_;
  vip_timer_.async_wait([this, alive](const boost::system::error_code& ec) {
    if (ec || alive.expired() || stopped_) return;
    if (vip_fault_ && now() >= probe_at_) {
      probe_vips();
      if (stopped_) return;
    }
    reconcile(true);
  });
}

void Engine::probe_vips() {
  // In the FAULT we entered because the kernel refused a VIP: whether the
  // cause is gone is only known by trying. A trial add is deleted at once;
  // the peer holds the address meanwhile, but a Linux address add sends no
  // gratuitous ARP, so hosts keep pointing at the peer.
  const fsm::TimePoint t = now();
  const vips::Policy pol = vip_policy();
  for (std::size_t i = 0; i < vips_.size(); ++i) {
    auto& v = vips_[i];
    if (auto l = env_.kernel.link(v.device)) v.ifindex = l->ifindex;
    if (auto ec = env_.kernel.add_address(v)) {
      ++probe_failures_;
      probe_at_ = t + vips::backoff(probe_failures_, pol);
      const std::string why = "cannot add VIP " + name_of(v) + " to " + v.device + ": " + ec.message();
      if (why != vip_fault_why_) {
        spdlog::warn("vrrp {}: still FAULT: {}", cfg_.name, why);
        vip_fault_why_ = why;
        reevaluate();  // refreshes the fault reason shown in /status
      } else {
        spdlog::debug("vrrp {}: still FAULT: {} (trial {})", cfg_.name, why, probe_failures_);
      }
      reconcile(false);  // takes back what this round added: not ours to hold
      return;
    }
    vips::record(vip_slots_[i], false, vips::Op::add, "", t, pol);  // present, not wanted: removed below
  }
  spdlog::info("vrrp {}: the virtual addresses can be added again: leaving FAULT", cfg_.name);
  reconcile(false);  // deletes the trial addresses
  vip_fault_ = false;
  vip_fault_why_.clear();
  probe_failures_ = 0;
  reevaluate();  // FaultCleared: Startup, BACKUP (the election decides)
}

}  // namespace vrrp
