// The control thread under SCHED_RR (`vrrp_rt_priority`, keepalived's
// option of the same name).
//
// The control thread sends our VRRP adverts. On a busy node (the catalog's
// own pg_dump at backup time, a vacuum, a build) a runnable thread can wait
// a long time for a CPU: tests/integration/test_flood_netns.py measured
// 150-450 ms of silence between a master's adverts on a 2-core machine at
// load 4-10, the control thread runnable all along (its run-queue wait in
// /proc/PID/schedstat grew by the same amount). A backup declares the
// master down after 3 x advert_int + skew: at 100 ms that is ~0.35 s, and
// it takes the VIP beside us. A realtime thread is run as soon as it is
// runnable.
//
// What keeps it safe:
// - only the control thread: it is set after the workers are started, and
//   with SCHED_RESET_ON_FORK, so threads and children it creates later
//   (resolver, track scripts, notify hooks) get the normal scheduler;
// - RLIMIT_RTTIME: a realtime thread that runs kRtTimeLimit without
//   sleeping gets SIGXCPU, whose handler puts the control thread back on
//   the normal scheduler for good (logged, and shown in /status). A flood
//   that kept it busy that long must not take a CPU away from the rest of
//   the machine, the proxy workers among them.
#pragma once

#include <chrono>
#include <string>

namespace daemon_ {

namespace realtime {

inline constexpr std::chrono::milliseconds kRtTimeLimit{500};

// Puts the calling thread under SCHED_RR|SCHED_RESET_ON_FORK at `priority`
// (1-99) with the RLIMIT_RTTIME guard. Needs CAP_SYS_NICE (the packaged
// unit grants it; privileges::drop_after_start drops it right after), or an
// RLIMIT_RTPRIO of at least `priority` (LimitRTPRIO=).
// Returns an empty string, or why it could not (then nothing changed).
std::string enter(unsigned priority);

// Lowers RLIMIT_RTPRIO to 0: nothing started later (track scripts, notify
// hooks, which inherit the limit) can make itself realtime, whatever
// LimitRTPRIO= an operator gave the daemon so that enter() works unprivileged.
void forbid_from_now_on();

// What /status shows: "SCHED_RR 10", "SCHED_OTHER", or "SCHED_OTHER
// (realtime dropped: ran 500 ms without sleeping)".
std::string describe();

// Whether the guard fired since enter(); the daemon logs it once.
bool dropped();

}  // namespace realtime
}  // namespace daemon_
