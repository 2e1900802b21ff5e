// Whether every worker thread's event loop still turns, for the systemd
// watchdog (Daemon::watch_workers). Pure: no clock, no thread; the daemon
// gives it the time and what each worker answered.
//
// At each ping the control thread posts a heartbeat (a sequence number) to
// every worker whose previous one was answered; a worker answers by storing
// the number when its loop runs what was posted, at its next turn, after at
// most one batch of I/O events (proxy/loop.cpp run()), never behind every
// queued event, so a worker busy with a flood of connections answers within
// milliseconds. A heartbeat still unanswered `limit` after it was posted
// (half of WatchdogSec) means the loop has not turned for that long: a
// handler spinning or a call that never returns. Its clients hang while
// SO_REUSEPORT keeps sending it new ones, so the daemon stops pinging and
// systemd restarts it (README, "The watchdog covers the worker threads").
//
// Without systemd's watchdog (`vipproxy run` by hand, a unit without
// WatchdogSec) the same heartbeats go out every kWorkerWatchPeriod: nothing
// restarts the daemon, but update() tells which workers became stuck or
// turned again, for the log, /status and /metrics.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace daemon_ {

// How often the heartbeats go out, and how long one may wait before its
// worker counts as stuck, when systemd set no watchdog (WATCHDOG_USEC): a
// loop that turns every few milliseconds, however busy, cannot miss 5 s by
// accident, and an operator learns of a stuck worker within 10 s.
inline constexpr std::chrono::seconds kWorkerWatchPeriod{5};

class WorkerWatch {
 public:
  using Clock = std::chrono::steady_clock;

  struct Stuck {
    size_t worker;                 // its index
    std::chrono::milliseconds for_;   // since its unanswered heartbeat was posted
  };

  // A worker that became stuck (stuck: true, for_: how long its heartbeat
  // has waited) or whose loop turns again (stuck: false, for_: how long it
  // had waited at the last update that found it stuck: at least that long).
  struct Change {
    size_t worker;
    bool stuck;
    std::chrono::milliseconds for_;
    bool operator==(const Change&) const = default;
  };

  explicit WorkerWatch(size_t workers) : sent_(workers), stuck_(workers) {}

  // At a ping, `answered[i]` being the last heartbeat worker i ran. The
  // first worker (lowest index) whose heartbeat has waited `limit` or more,
  // if any. A worker late by less than `limit` is neither stuck nor due.
  std::optional<Stuck> check(const std::vector<uint64_t>& answered, Clock::time_point now, Clock::duration limit);
  // As check(), for every worker: records which are stuck now and returns
  // the changes since the last update, by worker index.
  std::vector<Change> update(const std::vector<uint64_t>& answered, Clock::time_point now, Clock::duration limit);
  // Workers found stuck by the last update(), by index.
  std::vector<size_t> stuck() const;
  // Whether worker i has answered its heartbeat (or never had one): post
  // it the next, numbered by sent().
  bool due(size_t i, const std::vector<uint64_t>& answered) const { return answered[i] >= sent_[i].seq; }
  // Records heartbeat number `seq` posted to worker i at `now`; returns seq.
  uint64_t sent(size_t i, Clock::time_point now) {
    sent_[i] = {++next_, now};
    return next_;
  }
  size_t size() const { return sent_.size(); }

 private:
  struct Sent {
    uint64_t seq = 0;  // 0: none posted yet
    Clock::time_point at{};
  };
  std::vector<Sent> sent_;
  struct Stuck_ {
    bool now = false;
    std::chrono::milliseconds for_{0};
  };
  std::vector<Stuck_> stuck_;
  uint64_t next_ = 0;
};

}  // namespace daemon_
