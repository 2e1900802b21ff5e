#include "proxy/socket_options.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace proxy {

namespace {
void set_int(int fd, int level, int name, int value) {
  (void)::setsockopt(fd, level, name, &value, sizeof value);
}
int seconds(cfg::Duration d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  return s < 1 ? 1 : static_cast<int>(s);
}
}  // namespace

void set_cloexec(int fd) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0 && !(flags & FD_CLOEXEC)) (void)::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

void apply_session_options(int fd, const cfg::Proxy& p) {
  apply_nodelay(fd);
  apply_dead_peer_options(fd, p);
}

void apply_nodelay(int fd) { set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1); }

void apply_dead_peer_options(int fd, const cfg::Proxy& p) {
  // Off is set too, not left alone: a reload sets the new options on a kept
  // listener (Worker::apply_reload), whose old ones its sessions inherit.
  if (p.keepalive.enabled) {
    set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
    set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, seconds(p.keepalive.idle));
    set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, seconds(p.keepalive.interval));
    set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, static_cast<int>(p.keepalive.count));
  } else {
    set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
  }
  // 0: the kernel's default.
  set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(p.tcp_user_timeout.count()));
}

}  // namespace proxy
