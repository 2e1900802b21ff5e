// systemd's notification protocol (sd_notify(3): READY=1, RELOADING=1,
// STOPPING=1, STATUS=, WATCHDOG=1), sent without ever waiting.
//
// Why not libsystemd's sd_notify(): it sends with a blocking sendmsg(), and
// a datagram to a Unix socket whose receive queue is full waits until the
// receiver reads (net.unix.max_dgram_qlen datagrams: 512 with systemd's
// sysctl.d, the kernel's default is 10). PID 1 reads its notify socket from
// its one event loop; while it is busy (a daemon-reload of a big system,
// thousands of units starting at boot, a stuck mount) every service's
// notification waits. Our notifications come from the control thread, which
// also sends the VRRP adverts and runs the health checks: a watchdog ping
// that waited would silence the master and let the backup take the VIP.
//
// So each datagram is sent with MSG_DONTWAIT. A WATCHDOG=1 the socket does
// not take is dropped (the next one follows within half the period, and a
// PID 1 that does not read does not count pings either). A state change
// (READY=1, RELOADING=1, STOPPING=1, STATUS=) is kept, in order, and sent
// again by retry() until the socket takes it: systemd must see the last
// state we announced. At most kMaxWaiting are kept; older ones are dropped
// (and counted) past that.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace daemon_ {

class SystemdNotifier {
 public:
  static constexpr size_t kMaxWaiting = 32;

  // `address`: $NOTIFY_SOCKET, "/path" or "@abstract-name" (sd_notify(3)).
  // Null or empty: not under a notifying supervisor, every call does
  // nothing. Anything else that cannot be used: `error` says why and the
  // notifier stays disabled.
  SystemdNotifier(const char* address, std::string& error);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return fd_ >= 0; }

  // A state change: sent now, or kept for retry() behind any already kept.
  void state(std::string message);
  // WATCHDOG=1: sent now or dropped.
  void ping();
  // Sends what is kept, in order, until the socket refuses one. Returns
  // whether anything is still kept.
  bool retry();
  // At exit, after the control loop: retry() until nothing is kept, for at
  // most `timeout` (an unconnected datagram socket cannot be polled for
  // room: tries every 10 ms). STOPPING=1 matters most when the daemon stops
  // on its own. Returns whether everything went out.
  bool finish(std::chrono::milliseconds timeout);

  size_t waiting() const { return waiting_.size(); }
  // Notifications never sent: watchdog pings refused, state changes
  // dropped past kMaxWaiting, and any the socket failed for good.
  uint64_t dropped() const { return dropped_; }

 private:
  enum class Sent { sent, would_block, failed };
  Sent send(std::string_view message);

  int fd_ = -1;
  sockaddr_un addr_{};
  socklen_t addr_len_ = 0;
  std::deque<std::string> waiting_;
  uint64_t dropped_ = 0;
  bool failure_logged_ = false;
};

// sd_watchdog_enabled(3): WATCHDOG_USEC (positive microseconds) when
// WATCHDOG_PID is unset or names `self`. Nullopt: no watchdog wanted.
std::optional<std::chrono::microseconds> watchdog_period(const char* usec, const char* pid, long self);

}  // namespace daemon_
