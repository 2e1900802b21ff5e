// Accepted sockets inherit the session options from the listener
// (Worker::bind_listener sets them there), so the daemon sets none per
// client connection. This checks, with getsockopt on a socket accepted the
// way the worker accepts (accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC), that
// the running kernel copies every one of them; and that the client address
// accept4() hands over is named as the client sees itself (the session log).
#define BOOST_TEST_MODULE proxy_socket_options
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "proxy/session.h"
#include "proxy/socket_options.h"
#include "proxy/worker.h"

namespace {

int get(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  BOOST_REQUIRE(::getsockopt(fd, level, name, &v, &len) == 0);
  return v;
}

uint16_t port_of(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

// Connects a client `c` to the loopback listener `listen_fd` and accepts it
// the way the worker does (accept4, SOCK_NONBLOCK | SOCK_CLOEXEC).
int connect_and_accept(int listen_fd, int& c) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port_of(listen_fd));
  c = ::socket(AF_INET, SOCK_STREAM, 0);
  BOOST_REQUIRE(::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  int fd = -1;
  for (int i = 0; i < 1000 && fd < 0; ++i) {
    fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) ::usleep(1000);
  }
  BOOST_REQUIRE(fd >= 0);
  return fd;
}

cfg::Proxy settings() {
  cfg::Proxy p;
  p.name = "t";
  p.listen = {"127.0.0.1", 0};
  // Values unlike the kernel's defaults, so inheritance is what shows.
  p.keepalive.enabled = true;
  p.keepalive.idle = std::chrono::seconds(41);
  p.keepalive.interval = std::chrono::seconds(13);
  p.keepalive.count = 7;
  p.tcp_user_timeout = std::chrono::milliseconds(23000);
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(accepted_sockets_inherit_the_listeners_options) {
  auto p = settings();
  auto l = proxy::Worker::bind_listener(p);
  int c = -1;
  int fd = connect_and_accept(l->fd, c);
  BOOST_TEST(get(fd, IPPROTO_TCP, TCP_NODELAY) != 0);
  BOOST_TEST(get(fd, SOL_SOCKET, SO_KEEPALIVE) != 0);
  BOOST_TEST(get(fd, IPPROTO_TCP, TCP_KEEPIDLE) == 41);
  BOOST_TEST(get(fd, IPPROTO_TCP, TCP_KEEPINTVL) == 13);
  BOOST_TEST(get(fd, IPPROTO_TCP, TCP_KEEPCNT) == 7);
  BOOST_TEST(get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 23000);
  BOOST_TEST((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  BOOST_TEST((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  ::close(fd);
  ::close(c);
}

BOOST_AUTO_TEST_CASE(options_off_stay_off) {
  auto p = settings();
  p.keepalive.enabled = false;
  p.tcp_user_timeout = std::chrono::milliseconds(0);
  auto l = proxy::Worker::bind_listener(p);
  int c = -1;
  int fd = connect_and_accept(l->fd, c);
  BOOST_TEST(get(fd, IPPROTO_TCP, TCP_NODELAY) != 0);
  BOOST_TEST(get(fd, SOL_SOCKET, SO_KEEPALIVE) == 0);
  BOOST_TEST(get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 0);
  ::close(fd);
  ::close(c);
}

// The session log names the client by the address accept4() hands the
// worker (proxy::PeerAddress): as the client sees its own socket, IPv4 as
// "a.b.c.d:port", IPv6 as "[addr]:port".
BOOST_AUTO_TEST_CASE(accepted_peer_is_named_as_the_client_sees_itself) {
  for (int family : {AF_INET, AF_INET6}) {
    sockaddr_in6 any{};
    socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&any);
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
      any.sin6_family = AF_INET6;
      any.sin6_addr = in6addr_loopback;
    }
    int l = ::socket(family, SOCK_STREAM, 0);
    BOOST_REQUIRE(l >= 0);
    if (::bind(l, reinterpret_cast<sockaddr*>(&any), len) != 0) {
      BOOST_TEST_MESSAGE("no loopback for family " << family << " here");
      BOOST_REQUIRE(family == AF_INET6);  // IPv4 loopback is always there
      ::close(l);
      continue;
    }
    BOOST_REQUIRE(::listen(l, 1) == 0);
    BOOST_REQUIRE(::getsockname(l, reinterpret_cast<sockaddr*>(&any), &len) == 0);
    int c = ::socket(family, SOCK_STREAM, 0);
    BOOST_REQUIRE(::connect(c, reinterpret_cast<sockaddr*>(&any), len) == 0);
    proxy::PeerAddress peer{};
    socklen_t peer_len = sizeof peer;
    int fd = ::accept4(l, &peer.sa, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    sockaddr_in6 self{};
    socklen_t self_len = sizeof self;
    BOOST_REQUIRE(::getsockname(c, reinterpret_cast<sockaddr*>(&self), &self_len) == 0);
    const std::string port = std::to_string(ntohs(self.sin6_port));  // same offset in sockaddr_in
    BOOST_TEST(proxy::to_string(peer) == (family == AF_INET ? "127.0.0.1:" + port : "[::1]:" + port));
    ::close(fd);
    ::close(c);
    ::close(l);
  }
}

// A reload that keeps a proxy's listener sets the new options on it
// (Worker::apply_reload): options turned off must be cleared there too, or
// sessions accepted after the reload still get the old keepalive and
// TCP_USER_TIMEOUT.
BOOST_AUTO_TEST_CASE(a_kept_listener_takes_options_a_reload_turned_off) {
  auto l = proxy::Worker::bind_listener(settings());
  auto off = settings();
  off.keepalive.enabled = false;
  off.tcp_user_timeout = std::chrono::milliseconds(0);
  proxy::apply_session_options(l->fd, off);
  int c = -1;
  int fd = connect_and_accept(l->fd, c);
  BOOST_TEST(get(fd, SOL_SOCKET, SO_KEEPALIVE) == 0);
  BOOST_TEST(get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) == 0);
  ::close(fd);
  ::close(c);
}
