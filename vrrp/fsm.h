// The VRRP state machine of RFC 5798 §6.4 (and RFC 3768 §6.4 for v2) as a
// pure function:  step(config, vars, event, now) -> (vars', ordered actions).
//
// It reads no clock, opens no socket, logs nothing. Timers are actions the
// engine executes; each carries a generation number and an expiry event is
// acted upon only if its generation is the latest one issued, so a tick that
// raced with a cancel or a restart is ignored (no timer is ever "cancelled
// too late"). Packets are validated by the codec before they become events:
// a malformed or foreign packet is never an event and so can never restart a
// timer. Critical work (VIPs, GARP, adverts) comes before NotifyState in the
// action list; notify scripts, logs and metrics observe NotifyState.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "vrrp/address.h"

namespace vrrp::fsm {

using Duration = std::chrono::microseconds;
// "now": any monotonic time base the engine likes (steady_clock::now() minus
// the start). Only differences are used.
using TimePoint = std::chrono::microseconds;

enum class State : uint8_t { initialize, backup, master, fault };
std::string_view to_string(State s);

inline constexpr uint8_t kOwnerPriority = 255;  // RFC 5798 §5.2.4: address owner
inline constexpr uint8_t kStopPriority = 0;     // "stops participating"

struct Config {
  uint8_t version = 3;        // 2: RFC 3768 timers; 3: RFC 5798 (learned interval)
  uint8_t priority = 100;     // configured; 255 = address owner
  Duration advert_int = std::chrono::seconds(1);
  bool preempt = true;        // RFC 5798 §6.1 Preempt_Mode, default True
  Duration preempt_delay{0};  // keepalived preempt_delay (see step() for the rule)
  IpAddress primary_address;  // our source address, for the §6.4.3 tie-break
  // keepalived's `state MASTER`. Kept for status only: keepalived 2.2.7 still
  // starts in BACKUP and waits Master_Down_Interval before taking over
  // (docs/lab-notes.md "keepalived 2.2.7 behaviour"), and so do we, so two nodes both
  // configured MASTER still elect by priority instead of fighting.
  bool start_as_master_hint = false;
  // Gratuitous ARP / unsolicited NA on becoming master (RFC 5798 §6.4.2) and
  // on re-asserting (master_rx), as keepalived does it: a burst of
  // `garp_repeat` rounds `garp_interval` apart (0: back to back), the burst
  // again `garp_delay` later (0: none) and one round every `garp_refresh`
  // while master (0: none). The defaults are one round, nothing more.
  unsigned garp_repeat = 1;
  Duration garp_interval{0};
  Duration garp_delay{0};
  Duration garp_refresh{0};
};

// ---- events ----
struct Startup {};
struct Shutdown {};
struct MasterDownTimerFired { uint64_t generation; };
struct AdvertTimerFired { uint64_t generation; };
// An advert that passed decode() and the VRID/version checks.
struct AdvertReceived {
  uint8_t priority;
  IpAddress src;          // IP source = the sender's primary address
  Duration max_adver_int; // v3: Max Adver Int (centiseconds -> Duration); v2: ignored
};
struct PriorityChanged { uint8_t effective; };  // track weights applied
struct GarpTimerFired { uint64_t generation; };
// A VIP got installed after the transition (a retried or re-added address):
// as master, announce it with a burst (hosts may still point at the old MAC).
struct VipsInstalledLate {};
struct Fault {};         // link down, or a weight-0 track failing (aggregated by the engine)
struct FaultCleared {};
// What became of the advert(s) a SendAdvert / SendAdvertPriorityZero asked
// for: ok when the kernel took at least one (sendto succeeded). A firewall
// that drops them without an error is not seen here (README, "On a shared
// LAN").
struct AdvertSent { bool ok; };
using Event = std::variant<Startup, Shutdown, MasterDownTimerFired, AdvertTimerFired,
                           AdvertReceived, PriorityChanged, Fault, FaultCleared, GarpTimerFired,
                           VipsInstalledLate, AdvertSent>;

// ---- actions (executed in order by the engine) ----
struct SendAdvert { uint8_t priority; };
struct SendAdvertPriorityZero {};
struct StartAdvertTimer { Duration delay; uint64_t generation; };
struct StartMasterDownTimer { Duration delay; uint64_t generation; };
struct CancelTimers {};
struct AddVips {};
struct RemoveVips {};
struct SendGarp {};  // one round: a GARP per IPv4 VIP / an unsolicited NA per IPv6 VIP
struct NotifyState { State state; };
// The GARP timer, apart from the one of RFC 5798 §6.2 (both run in Master).
struct StartGarpTimer { Duration delay; uint64_t generation; };
struct CancelGarpTimer {};
using Action = std::variant<SendAdvert, SendAdvertPriorityZero, StartAdvertTimer,
                            StartMasterDownTimer, CancelTimers, AddVips, RemoveVips, SendGarp,
                            NotifyState, StartGarpTimer, CancelGarpTimer>;

// The GARP schedule of a master (Config::garp_*). At most one GARP timer is
// live, at the earliest of what is due next; an expiry counts only with the
// latest generation, as for the other timer.
struct GarpVars {
  uint64_t generation = 0;
  unsigned rounds_left = 0;                 // of the burst in progress
  TimePoint next_round{};                   // when its next round is due
  std::optional<TimePoint> second_burst;    // garp_delay after the first
  std::optional<TimePoint> refresh;         // the next garp_refresh round
  bool active() const { return rounds_left > 0 || second_burst || refresh; }
};

// Everything the machine remembers between events. Plain data: the engine
// may show any of it in /status.
struct Vars {
  State state = State::initialize;
  uint8_t priority = 0;             // effective priority (0 until Startup)
  Duration master_adver_interval{}; // RFC 5798 §6.1 (v3: learned from the master)
  uint64_t generation = 0;          // of the one timer that may be running
  std::optional<IpAddress> master_address;  // last master heard (backup) / ours (master)
  uint8_t master_priority = 0;
  // preempt_delay: when this backup began hearing a lower-priority master
  // without a break; nullopt while the master it hears is not lower.
  std::optional<TimePoint> lower_master_since;
  // When this master last answered a lower-priority advert at once (advert +
  // GARP, see master_rx); such answers are spaced by kReassertInterval. One
  // that came within the spacing is owed: its GARP goes with the first
  // Adver_Timer tick after the spacing (reassert_pending).
  std::optional<TimePoint> last_reassert;
  bool reassert_pending = false;
  // When this master last answered a priority-0 advert at once (RFC 5798
  // §6.4.3), spaced the same way (master_rx).
  std::optional<TimePoint> last_stop_answer;
  GarpVars garp;
  // A weight-0 track input failing (Fault .. FaultCleared), kept apart from
  // the FAULT below so that neither ends the other.
  bool track_fault = false;
  // Adverts we cannot send (AdvertSent{false}): since when, without a send
  // that worked in between.
  std::optional<TimePoint> send_failing_since;
  // While they fail, as MASTER: since when we hear another router that is
  // MASTER too (it sends adverts, and cannot hear ours, so it will never
  // yield), and when we heard it last (a break longer than
  // Master_Down_Interval starts the count again).
  std::optional<TimePoint> mute_master_since;
  std::optional<TimePoint> mute_master_last;
  // FAULT because of it: the VIPs went to the other master; a priority-0
  // advert every Advertisement_Interval tries the path, and the first that
  // the kernel takes is a fresh Startup (master_rx, docs/rfc-ledger.md).
  bool send_fault = false;
};

// A master answers a lower-priority advert at once at most this often (or
// once per advert_int when that is longer). See master_rx in fsm.cpp.
inline constexpr Duration kReassertInterval = std::chrono::seconds(1);

struct Step {
  Vars vars;
  std::vector<Action> actions;
};

// RFC 5798 §6.1 derived values (also RFC 3768 §6.1 for v2).
Duration skew_time(const Config& c, uint8_t priority, Duration master_adver_interval);
Duration master_down_interval(const Config& c, uint8_t priority, Duration master_adver_interval);

// The Vars a machine starts with: Initialize, the configured priority.
Vars initial_vars(const Config& c);

Step step(const Config& c, const Vars& v, const Event& e, TimePoint now);

}  // namespace vrrp::fsm
