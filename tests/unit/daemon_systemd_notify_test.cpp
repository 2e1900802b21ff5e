// systemd notifications (daemon/systemd_notify): the NOTIFY_SOCKET address
// forms of sd_notify(3), WATCHDOG_USEC/WATCHDOG_PID, and that nothing ever
// waits for a receiver that does not read: over real Unix datagram sockets
// whose receive queue this test fills (net.unix.max_dgram_qlen datagrams).
#define BOOST_TEST_MODULE systemd_notify
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/systemd_notify.h"

using daemon_::SystemdNotifier;
using daemon_::watchdog_period;

namespace {

// A bound datagram socket standing for PID 1's notify socket; reads only
// when asked.
struct Receiver {
  int fd = -1;
  std::string address;  // as NOTIFY_SOCKET would say it
  std::string path;     // to unlink, for a path address

  explicit Receiver(bool abstract) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    BOOST_REQUIRE(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    socklen_t len;
    const std::string name = "vipproxy-notify-test-" + std::to_string(::getpid()) + "-" + std::to_string(fd);
    if (abstract) {
      address = "@" + name;
      std::memcpy(a.sun_path + 1, name.data(), name.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    } else {
      path = address = "/tmp/" + name;
      ::unlink(path.c_str());
      std::memcpy(a.sun_path, path.data(), path.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    }
    BOOST_REQUIRE_EQUAL(::bind(fd, reinterpret_cast<sockaddr*>(&a), len), 0);
  }
  ~Receiver() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
    if (!path.empty()) ::unlink(path.c_str());
  }
  // Everything queued now, oldest first.
  std::vector<std::string> read_all() {
    std::vector<std::string> got;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) break;
      got.emplace_back(buf, static_cast<size_t>(n));
    }
    return got;
  }
  // Sends from a socket of the test's own until the receiver takes no more
  // (a datagram waits for a full receiver, whoever sends it). Returns how many.
  int fill() {
    int sender = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(sender >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    socklen_t len;
    if (address[0] == '@') {
      std::memcpy(a.sun_path + 1, address.data() + 1, address.size() - 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    } else {
      std::memcpy(a.sun_path, address.data(), address.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
    }
    int n = 0;
    while (::sendto(sender, "FILLER", 6, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a), len) == 6) ++n;
    const int e = errno;
    ::close(sender);
    BOOST_REQUIRE_MESSAGE(e == EAGAIN || e == EWOULDBLOCK, "filling stopped on " << std::strerror(e));
    BOOST_REQUIRE(n > 0);
    return n;
  }
};

std::vector<std::string> without_filler(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& s : v)
    if (s != "FILLER") out.push_back(s);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(watchdog_usec_and_pid) {
  BOOST_TEST(!watchdog_period(nullptr, nullptr, 42));
  BOOST_TEST(watchdog_period("10000000", nullptr, 42)->count() == 10000000);
  BOOST_TEST(watchdog_period("400000", "42", 42)->count() == 400000);
  BOOST_TEST(!watchdog_period("400000", "43", 42));  // meant for another process (our parent's)
  BOOST_TEST(!watchdog_period("0", nullptr, 42));
  BOOST_TEST(!watchdog_period("", nullptr, 42));
  BOOST_TEST(!watchdog_period("10s", nullptr, 42));
  BOOST_TEST(!watchdog_period("-5", nullptr, 42));
  BOOST_TEST(!watchdog_period("400000", "x", 42));
}

BOOST_AUTO_TEST_CASE(addresses) {
  std::string error;
  SystemdNotifier none(nullptr, error);
  BOOST_TEST(!none.enabled());
  BOOST_TEST(error.empty());
  SystemdNotifier empty("", error);
  BOOST_TEST(!empty.enabled());
  BOOST_TEST(error.empty());
  SystemdNotifier relative("run/notify", error);
  BOOST_TEST(!relative.enabled());
  BOOST_TEST(error.find("neither an absolute path") != std::string::npos, error);
  const std::string long_path = "/" + std::string(200, 'x');
  SystemdNotifier too_long(long_path.c_str(), error);
  BOOST_TEST(!too_long.enabled());
  BOOST_TEST(error.find("longer") != std::string::npos, error);
  // Disabled: every call does nothing.
  relative.state("READY=1");
  relative.ping();
  BOOST_TEST(relative.waiting() == 0u);
  BOOST_TEST(relative.dropped() == 0u);
  BOOST_TEST(!relative.retry());
}

BOOST_AUTO_TEST_CASE(path_and_abstract_addresses_receive) {
  for (bool abstract : {false, true}) {
    Receiver r(abstract);
    std::string error;
    SystemdNotifier n(r.address.c_str(), error);
    BOOST_REQUIRE_MESSAGE(n.enabled(), error);
    n.state("READY=1\nSTATUS=1 proxies");
    n.ping();
    const auto got = r.read_all();
    BOOST_REQUIRE_EQUAL(got.size(), 2u);
    BOOST_TEST(got[0] == "READY=1\nSTATUS=1 proxies");
    BOOST_TEST(got[1] == "WATCHDOG=1");
    BOOST_TEST(n.dropped() == 0u);
  }
}

// The case the notifier exists for: PID 1 not reading. No call waits; pings
// are dropped, state changes kept and delivered in order once it reads.
BOOST_AUTO_TEST_CASE(full_receiver_never_waits_and_state_changes_arrive_in_order) {
  Receiver r(false);
  std::string error;
  SystemdNotifier n(r.address.c_str(), error);
  BOOST_REQUIRE(n.enabled());
  r.fill();
  n.state("RELOADING=1");
  n.ping();
  n.state("READY=1");
  BOOST_TEST(n.waiting() == 2u);
  BOOST_TEST(n.dropped() == 1u);  // the ping
  BOOST_TEST(n.retry());          // still full: kept
  BOOST_TEST(n.waiting() == 2u);
  // A state change while others wait goes behind them, even if the socket
  // had room: systemd must see them in the order they happened.
  r.read_all();
  n.state("STATUS=after");
  BOOST_TEST(n.waiting() == 3u);
  BOOST_TEST(!n.retry());
  BOOST_TEST(n.waiting() == 0u);
  const auto got = without_filler(r.read_all());
  BOOST_TEST(got == (std::vector<std::string>{"RELOADING=1", "READY=1", "STATUS=after"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(at_most_kMaxWaiting_kept_oldest_dropped) {
  Receiver r(true);
  std::string error;
  SystemdNotifier n(r.address.c_str(), error);
  r.fill();
  const size_t total = SystemdNotifier::kMaxWaiting + 8;
  for (size_t i = 0; i < total; ++i) n.state("STATUS=" + std::to_string(i));
  BOOST_TEST(n.waiting() == SystemdNotifier::kMaxWaiting);
  BOOST_TEST(n.dropped() == 8u);
  // The receiver takes only a queue's worth at a time: read and retry until
  // everything is out.
  std::vector<std::string> got;
  for (int round = 0; round < 100; ++round) {
    for (auto& s : without_filler(r.read_all())) got.push_back(s);
    if (!n.retry()) break;
  }
  for (auto& s : r.read_all()) got.push_back(s);
  BOOST_REQUIRE_EQUAL(got.size(), SystemdNotifier::kMaxWaiting);
  for (size_t i = 0; i < got.size(); ++i) BOOST_TEST(got[i] == "STATUS=" + std::to_string(i + 8));
}

BOOST_AUTO_TEST_CASE(receiver_gone_drops_without_keeping) {
  Receiver r(false);
  std::string error;
  SystemdNotifier n(r.address.c_str(), error);
  r.close();  // ENOENT (the path is gone); ECONNREFUSED for a bound-then-closed abstract name
  n.state("READY=1");
  n.ping();
  BOOST_TEST(n.waiting() == 0u);
  BOOST_TEST(n.dropped() == 2u);
}

// At exit: a bounded wait for the socket to take what is kept.
BOOST_AUTO_TEST_CASE(finish_waits_a_bounded_time) {
  Receiver r(false);
  std::string error;
  SystemdNotifier n(r.address.c_str(), error);
  r.fill();
  n.state("STOPPING=1");
  BOOST_TEST(!n.finish(std::chrono::milliseconds(50)));
  BOOST_TEST(n.waiting() == 1u);
  r.read_all();
  BOOST_TEST(n.finish(std::chrono::milliseconds(1000)));
  BOOST_TEST(n.waiting() == 0u);
  BOOST_TEST(r.read_all() == (std::vector<std::string>{"STOPPING=1"}), boost::test_tools::per_element());
}
