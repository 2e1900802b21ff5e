#include "daemon/systemd_notify.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

namespace daemon_ {

SystemdNotifier::SystemdNotifier(const char* address, std::string& error) {
  error.clear();
  if (!address || !*address) return;
  const std::string_view a(address);
  // sun_path holds the path and, for a path, its terminating NUL; an
  // abstract name is sized by the address length instead (unix(7)).
  if (a.size() >= sizeof addr_.sun_path) {
    error = "NOTIFY_SOCKET is longer than a Unix socket address can be";
    return;
  }
  if (a[0] != '/' && a[0] != '@') {
    error = "NOTIFY_SOCKET '" + std::string(a) + "' is neither an absolute path nor an @abstract name";
    return;
  }
  addr_.sun_family = AF_UNIX;
  std::memcpy(addr_.sun_path, a.data(), a.size());
  if (a[0] == '@') {
    addr_.sun_path[0] = '\0';
    addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.size());
  } else {
    addr_len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.size() + 1);
  }
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) error = std::string("cannot open a socket for NOTIFY_SOCKET: ") + std::strerror(errno);
}

SystemdNotifier::~SystemdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

SystemdNotifier::Sent SystemdNotifier::send(std::string_view message) {
  // MSG_DONTWAIT as well as SOCK_NONBLOCK: the rule is the call's, whatever
  // the descriptor's flags.
  for (;;) {
    const ssize_t n = ::sendto(fd_, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                               reinterpret_cast<const sockaddr*>(&addr_), addr_len_);
    if (n >= 0) return Sent::sent;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Sent::would_block;
    // ECONNREFUSED/ENOENT: nobody listens (the supervisor is gone, or the
    // socket was replaced: systemd re-creates it on daemon-reexec). Said
    // once; later notifications may get through again.
    if (!failure_logged_) {
      failure_logged_ = true;
      spdlog::warn("systemd notification not sent: {} (said once)", std::strerror(errno));
    }
    return Sent::failed;
  }
}

void SystemdNotifier::state(std::string message) {
  if (fd_ < 0) return;
  if (waiting_.empty()) {
    switch (send(message)) {
      case Sent::sent:
        return;
      case Sent::failed:
        ++dropped_;
        return;
      case Sent::would_block:
        break;
    }
  }
  if (waiting_.size() == kMaxWaiting) {
    waiting_.pop_front();
    ++dropped_;
  }
  waiting_.push_back(std::move(message));
}

void SystemdNotifier::ping() {
  if (fd_ < 0) return;
  if (send("WATCHDOG=1") != Sent::sent) ++dropped_;
}

bool SystemdNotifier::retry() {
  while (!waiting_.empty()) {
    const Sent s = send(waiting_.front());
    if (s == Sent::would_block) return true;
    if (s == Sent::failed) ++dropped_;
    waiting_.pop_front();
  }
  return false;
}

bool SystemdNotifier::finish(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (retry()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::optional<std::chrono::microseconds> watchdog_period(const char* usec, const char* pid, long self) {
  if (!usec) return std::nullopt;
  auto number = [](std::string_view s, uint64_t& v) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && end == s.data() + s.size() && !s.empty();
  };
  uint64_t us = 0, p = 0;
  if (!number(usec, us) || us == 0) return std::nullopt;
  if (pid && (!number(pid, p) || p != static_cast<uint64_t>(self))) return std::nullopt;
  return std::chrono::microseconds(us);
}

}  // namespace daemon_
