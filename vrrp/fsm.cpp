#include "vrrp/fsm.h"

#include <algorithm>
#include <type_traits>

namespace vrrp::fsm {
namespace {

// Helper overload set for std::visit.
template <class... F> struct Overload : F... { using F::operator()...; };
template <class... F> Overload(F...) -> Overload<F...>;

struct Ctx {
  const Config& c;
  Vars v;
  std::vector<Action> out;
  TimePoint now;

  // Every (re)start and every cancel issues a new generation: at most one
  // timer (Adver_Timer in Master, Master_Down_Timer in Backup, RFC 5798 §6.2)
  // is live, and only an expiry carrying the latest generation counts.
  void start_master_down(Duration d) {
    out.push_back(StartMasterDownTimer{d, ++v.generation});
  }
  void start_advert() { out.push_back(StartAdvertTimer{c.advert_int, ++v.generation}); }
  void cancel_timers() {
    ++v.generation;
    out.push_back(CancelTimers{});
  }
  void enter(State s) {
    v.state = s;
    out.push_back(NotifyState{s});  // last: observers see a finished transition
  }
  Duration mdi() const { return master_down_interval(c, v.priority, v.master_adver_interval); }
  // RFC 5798 §6.4.2 / §6.4.3: "Set Master_Adver_Interval to Adver Interval
  // contained in the ADVERTISEMENT". v2 has no such field semantics: the
  // interval is configured and must match (RFC 3768 §7.1, checked by codec).
  void learn_interval(const AdvertReceived& a) {
    if (c.version == 3 && a.max_adver_int > Duration::zero())
      v.master_adver_interval = a.max_adver_int;
  }

  bool may_reassert() const {
    return !v.last_reassert || now - *v.last_reassert >= std::max(c.advert_int, kReassertInterval);
  }
  // The GARP of a re-assertion that came too soon after the last (master_rx),
  // sent with the first advert once the spacing has passed.
  void owed_garp() {
    if (!v.reassert_pending || !may_reassert()) return;
    start_garp();
    v.last_reassert = now;
    v.reassert_pending = false;
  }

  // ---- gratuitous ARP (Config::garp_*) ----
  // Becoming master, or re-asserting: the whole sequence anew (a burst, the
  // second burst, the refresh), replacing one in progress.
  void start_garp() {
    auto& g = v.garp;
    g.rounds_left = c.garp_repeat;
    g.next_round = now;
    g.second_burst.reset();
    g.refresh.reset();
    if (c.garp_delay > Duration::zero()) g.second_burst = now + c.garp_delay;
    if (c.garp_refresh > Duration::zero()) g.refresh = now + c.garp_refresh;
    garp_tick();
  }
  // A burst only (a VIP installed late), the rest of the schedule kept.
  void garp_burst() {
    v.garp.rounds_left = c.garp_repeat;
    v.garp.next_round = now;
    garp_tick();
  }
  // Sends what is due now and arms the GARP timer for what is due next.
  void garp_tick() {
    auto& g = v.garp;
    if (g.second_burst && *g.second_burst <= now) {
      g.second_burst.reset();
      g.rounds_left = c.garp_repeat;
      g.next_round = now;
    }
    if (g.rounds_left > 0 && g.next_round <= now) {
      // keepalived 2.2.7 sends its master_repeat ARPs back to back
      // (docs/lab-notes.md) unless garp_interval spaces them.
      do {
        out.push_back(SendGarp{});
        --g.rounds_left;
      } while (g.rounds_left > 0 && c.garp_interval <= Duration::zero());
      g.next_round = now + c.garp_interval;
    }
    if (g.refresh && *g.refresh <= now) {
      out.push_back(SendGarp{});
      g.refresh = now + c.garp_refresh;
    }
    std::optional<TimePoint> next;
    auto consider = [&](std::optional<TimePoint> t) {
      if (t && (!next || *t < *next)) next = t;
    };
    if (g.rounds_left > 0) consider(g.next_round);
    consider(g.second_burst);
    consider(g.refresh);
    if (next) out.push_back(StartGarpTimer{*next - now, ++g.generation});
  }
  // Out of Master: nothing more is sent, a pending expiry is stale.
  void stop_garp() {
    if (!v.garp.active()) return;
    const uint64_t stale = v.garp.generation;
    v.garp = GarpVars{};
    v.garp.generation = stale + 1;
    out.push_back(CancelGarpTimer{});
  }

  // RFC 5798 §6.4.1 (owner) / §6.4.2 (Master_Down_Timer fired). The VIPs go
  // on first: a GARP for an address we do not answer for would black-hole it.
  void become_master() {
    out.push_back(AddVips{});
    out.push_back(SendAdvert{v.priority});
    start_garp();
    start_advert();
    v.master_address = c.primary_address;
    v.master_priority = v.priority;
    v.lower_master_since.reset();
    v.reassert_pending = false;  // the GARP above covers it
    enter(State::master);
  }

  // RFC 5798 §6.4.1: Startup (and, for us, the end of a fault).
  void start() {
    v.master_address.reset();
    v.master_priority = 0;
    v.lower_master_since.reset();
    // "If the Priority = 255 (i.e., the router owns the IPvX address(es)
    // associated with the virtual router)" -> Master at once.
    if (v.priority == kOwnerPriority) {
      become_master();
      return;
    }
    // Otherwise Backup, whatever `state MASTER` says: keepalived 2.2.7 does
    // the same (docs/lab-notes.md), so a restarted ex-master does not grab the VIP
    // from a live master before hearing it.
    v.master_adver_interval = c.advert_int;
    start_master_down(mdi());
    enter(State::backup);
  }

  void backup_rx(const AdvertReceived& a) {
    // RFC 5798 §6.4.2: "If the Priority in the ADVERTISEMENT is zero, then:
    // Set the Master_Down_Timer to Skew_Time" -- the master is leaving, the
    // highest-priority backup (smallest skew) takes over first.
    if (a.priority == kStopPriority) {
      v.master_address.reset();
      v.master_priority = 0;
      v.lower_master_since.reset();
      start_master_down(skew_time(c, v.priority, v.master_adver_interval));
      return;
    }
    const bool lower = a.priority < v.priority;
    if (!lower) v.lower_master_since.reset();
    else if (!v.lower_master_since) v.lower_master_since = now;
    // preempt_delay (keepalived): a backup that could preempt keeps obeying a
    // lower-priority master until it has heard it for preempt_delay without a
    // break, so a node that just came up (routes, backends still converging)
    // does not take the VIP at once. Afterwards the RFC rule applies.
    // §6.1 Preempt_Mode: "the router that owns the IPvX address associated
    // with the VR always preempts, independent of the setting of this flag"
    // (an owner is master from the start, §6.4.1; a backup becomes one by a
    // reload in place).
    const bool preempt = c.preempt || v.priority == kOwnerPriority;
    const bool holding = lower && preempt && c.preempt_delay > Duration::zero() &&
                         now - *v.lower_master_since < c.preempt_delay;
    // "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is
    // greater than or equal to the local Priority, then: [learn the
    // interval], Reset the Master_Down_Timer to Master_Down_Interval. Else
    // (preempt, lower priority): Discard the ADVERTISEMENT" -- the timer then
    // runs out and we take over.
    if (!preempt || !lower || holding) {
      learn_interval(a);
      v.master_address = a.src;
      v.master_priority = a.priority;
      start_master_down(mdi());
    }
  }

  // A MASTER whose adverts the kernel refuses (an OUTPUT firewall rule
  // rejecting protocol 112, sendto failing for good) is not heard: the
  // peer's Master_Down_Timer runs out and it becomes MASTER too, and it
  // will never yield to us (it cannot hear us), while our answers to its
  // lower adverts fail as well. Two nodes answer ARP for the VIPs. Once we
  // have heard it without a break for Master_Down_Interval while every
  // send failed, the VIPs are its: we leave for FAULT (VIPs removed) and
  // keep trying the path with priority-0 adverts, which a working master
  // answers and a backup of a working master ignores after its skew race.
  // Hearing nobody, we keep the VIPs: the peer may be dead, and clients
  // still reach us (the engine logs and counts the failing sends).
  // keepalived keeps both masters (docs/rfc-ledger.md).
  // True when the advert made us leave MASTER.
  bool mute_master_rx(const AdvertReceived& a) {
    if (!v.send_failing_since) return false;
    const Duration d = mdi();
    if (!v.mute_master_since || !v.mute_master_last || now - *v.mute_master_last > d) v.mute_master_since = now;
    v.mute_master_last = now;
    if (now - *v.mute_master_since < d) return false;
    cancel_timers();
    out.push_back(RemoveVips{});
    v.master_address = a.src;
    v.master_priority = a.priority;
    v.mute_master_since.reset();
    v.mute_master_last.reset();
    v.send_fault = true;
    start_advert();  // the probe (AdvertTimerFired in Fault)
    enter(State::fault);
    return true;
  }

  // The end of send_fault: a fresh Startup unless a track input still
  // holds the instance in FAULT.
  void end_send_fault() {
    v.send_fault = false;
    cancel_timers();
    if (!v.track_fault) start();
  }

  void master_rx(const AdvertReceived& a) {
    // RFC 5798 §6.4.3: "If the Priority in the ADVERTISEMENT is zero, then:
    // Send an ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval".
    // Once per kReassertInterval (or advert_int) only, as the answer to a
    // lower advert below: a backup that heard the resigning master needs one
    // advert from us to stop its Skew_Time race, and the Adver_Timer goes on
    // telling it; answering every packet let a flood of forged priority-0
    // adverts (any host on the link) make us send one advert per packet.
    // Within the spacing the Adver_Timer is left running.
    if (a.priority == kStopPriority) {
      if (v.last_stop_answer && now - *v.last_stop_answer < std::max(c.advert_int, kReassertInterval)) return;
      v.last_stop_answer = now;
      out.push_back(SendAdvert{v.priority});
      start_advert();
      return;
    }
    // "If the Priority in the ADVERTISEMENT is greater than the local
    // Priority, or the Priority in the ADVERTISEMENT is equal to the local
    // Priority and the primary IPvX Address of the sender is greater than the
    // local primary IPvX Address, then: Cancel Adver_Timer, Set
    // Master_Adver_Interval ..., Set Master_Down_Timer, Transition to Backup".
    const bool they_win = a.priority > v.priority ||
                          (a.priority == v.priority && c.primary_address < a.src);
    if (!they_win && mute_master_rx(a)) return;
    if (they_win) {
      cancel_timers();
      out.push_back(RemoveVips{});
      learn_interval(a);
      v.master_address = a.src;
      v.master_priority = a.priority;
      v.lower_master_since.reset();
      start_master_down(mdi());
      enter(State::backup);
      return;
    }
    // The RFC says discard. We re-assert at once instead, as keepalived does:
    // another node believed it was master (a split brain just ended: a link
    // came back, or multicast was filtered), so hosts may have its MAC in
    // their ARP caches. One advert makes it step down now, the GARP repoints
    // the caches (docs/design.md, "Gratuitous ARP").
    // But once per kReassertInterval only: one answer is all a real ex-master
    // needs (our Adver_Timer keeps telling it anyway), while answering every
    // packet let a flood of lower adverts (any host on the link, or replayed
    // captures) make us send one advert and a GARP burst per packet:
    // tests/integration/test_flood_netns.py measured 1,167 lower adverts/s
    // turned into 1,167 adverts/s and 5,835 broadcast ARPs/s. Within the
    // window the advert is discarded, as the RFC says, but the GARP is owed:
    // a peer that flapped to master twice in a second sent its own GARPs the
    // second time too, and hosts would keep its MAC for the VIP. It goes out
    // with the first Adver_Timer tick after the window (owed_garp).
    if (!may_reassert()) {
      v.reassert_pending = true;
      return;
    }
    v.last_reassert = now;
    v.reassert_pending = false;
    out.push_back(SendAdvert{v.priority});
    start_garp();
    start_advert();
  }
};

uint8_t clamp_priority(const Config& c, uint8_t p) {
  // 0 means "stop" on the wire and 255 "address owner": a tracked priority
  // may reach neither (keepalived clamps to 1..254 the same way). Leaving
  // service because of a failing track is what Fault is for.
  if (p == kOwnerPriority && c.priority == kOwnerPriority) return p;
  if (p == 0) return 1;
  if (p == kOwnerPriority) return kOwnerPriority - 1;
  return p;
}

}  // namespace

std::string_view to_string(State s) {
  switch (s) {
    case State::initialize: return "INIT";
    case State::backup: return "BACKUP";
    case State::master: return "MASTER";
    case State::fault: return "FAULT";
  }
  return "?";
}

Duration skew_time(const Config& c, uint8_t priority, Duration master_adver_interval) {
  // RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 seconds.
  // RFC 5798 §6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
  // Microseconds keep the division exact enough (keepalived rounds to cs).
  const int64_t weight = 256 - int64_t(priority);
  const Duration base = c.version == 2 ? Duration(std::chrono::seconds(1)) : master_adver_interval;
  return Duration(weight * base.count() / 256);
}

Duration master_down_interval(const Config& c, uint8_t priority, Duration master_adver_interval) {
  // RFC 3768 §6.1: 3 * Advertisement_Interval + Skew_time.
  // RFC 5798 §6.1: (3 * Master_Adver_Interval) + Skew_time.
  const Duration mai = c.version == 2 ? c.advert_int : master_adver_interval;
  return 3 * mai + skew_time(c, priority, master_adver_interval);
}

Vars initial_vars(const Config& c) {
  Vars v;
  v.priority = clamp_priority(c, c.priority);
  v.master_adver_interval = c.advert_int;
  return v;
}

Step step(const Config& c, const Vars& vars, const Event& e, TimePoint now) {
  Ctx x{c, vars, {}, now};
  const State s = vars.state;
  std::visit(
      Overload{
          [&](const Startup&) {
            if (s == State::initialize) x.start();
          },
          [&](const Shutdown&) {
            // RFC 5798 §6.4.2 / §6.4.3 "If a Shutdown event is received".
            if (s == State::master) {
              // "Cancel the Adver_Timer, Send an ADVERTISEMENT with Priority
              // = 0": the backup takes over after its skew time instead of
              // three intervals (docs/design.md "Priority 0 on shutdown").
              x.cancel_timers();
              x.out.push_back(SendAdvertPriorityZero{});
              x.out.push_back(RemoveVips{});
              x.enter(State::initialize);
            } else if (s == State::backup) {
              x.cancel_timers();  // "Cancel the Master_Down_Timer"
              x.enter(State::initialize);
            } else if (s == State::fault) {
              if (x.v.send_fault) x.cancel_timers();
              x.enter(State::initialize);
            }
            x.v.send_fault = false;
            x.v.track_fault = false;
            x.v.send_failing_since.reset();
            x.v.mute_master_since.reset();
            x.v.mute_master_last.reset();
          },
          [&](const MasterDownTimerFired& t) {
            // A stale tick (an older generation, or any tick outside Backup)
            // is the race between a reset and an expiry already queued.
            if (s == State::backup && t.generation == vars.generation) x.become_master();
          },
          [&](const AdvertTimerFired& t) {
            if (s == State::fault && x.v.send_fault && t.generation == vars.generation) {
              // mute_master_rx: try the path without claiming anything.
              x.out.push_back(SendAdvertPriorityZero{});
              x.start_advert();
              return;
            }
            if (s == State::master && t.generation == vars.generation) {
              // RFC 5798 §6.4.3 "If the Adver_Timer fires": send, reset.
              x.out.push_back(SendAdvert{x.v.priority});
              x.owed_garp();
              x.start_advert();
            }
          },
          [&](const AdvertReceived& a) {
            // Our own adverts looped back are not a peer: answering them in
            // Master would be an advert storm.
            if (a.src == c.primary_address) return;
            if (s == State::backup) x.backup_rx(a);
            else if (s == State::master) x.master_rx(a);
          },
          [&](const PriorityChanged& p) {
            const uint8_t np = clamp_priority(c, p.effective);
            if (np == x.v.priority) return;
            x.v.priority = np;
            // Tell the peers now rather than at the next tick, so a backup
            // that may preempt starts its preempt_delay clock at once and
            // status pages agree. In Backup the new value is used at the next
            // advert received (preempt decision) and timer reset (skew).
            if (s == State::master) {
              x.v.master_priority = np;
              x.out.push_back(SendAdvert{np});
              x.start_advert();
            }
          },
          [&](const Fault&) {
            x.v.track_fault = true;
            if (s == State::master) {
              // keepalived sends priority 0 when it leaves MASTER for FAULT:
              // with a failing track (link still up) the peer takes over
              // after its skew time; with the link down the send just fails.
              x.cancel_timers();
              x.out.push_back(SendAdvertPriorityZero{});
              x.out.push_back(RemoveVips{});
              x.enter(State::fault);
            } else if (s == State::backup) {
              x.cancel_timers();
              x.enter(State::fault);
            } else if (s == State::initialize) {
              // Interface down at start: keepalived reports FAULT too.
              x.enter(State::fault);
            } else if (s == State::fault && x.v.send_fault) {
              // The track input holds FAULT now (the link went down): the
              // probe stops, FaultCleared is a fresh Startup.
              x.v.send_fault = false;
              x.cancel_timers();
            }
          },
          [&](const FaultCleared&) {
            // Leaving Fault is a fresh start (RFC 5798 §6.4.1 Startup rules):
            // as Backup, waiting Master_Down_Interval to hear a master.
            x.v.track_fault = false;
            if (s == State::fault && !x.v.send_fault) x.start();
          },
          [&](const AdvertSent& r) {
            if (!r.ok) {
              if (!x.v.send_failing_since) x.v.send_failing_since = now;
              return;
            }
            x.v.send_failing_since.reset();
            x.v.mute_master_since.reset();
            x.v.mute_master_last.reset();
            if (s == State::fault && x.v.send_fault) x.end_send_fault();
          },
          [&](const GarpTimerFired& t) {
            if (s == State::master && t.generation == vars.garp.generation) x.garp_tick();
          },
          [&](const VipsInstalledLate&) {
            if (s == State::master) x.garp_burst();
          },
      },
      e);
  if (x.v.state != State::master) x.stop_garp();
  return Step{std::move(x.v), std::move(x.out)};
}

}  // namespace vrrp::fsm
