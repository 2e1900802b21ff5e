// TCP options applied to both sides of every session.
#pragma once

#include "cfg/config.h"

namespace proxy {

// TCP_NODELAY (we forward whole protocol messages; Nagle would only add
// latency), and dead-peer detection without idle timeouts: SO_KEEPALIVE with
// TCP_KEEPIDLE/INTVL/CNT, and TCP_USER_TIMEOUT so unacknowledged data does not
// keep a session to a vanished node for the kernel's ~15 minutes of retransmits.
// Failures are ignored: an option the kernel refuses must not cost a session.
// Also marks the socket close-on-exec (set_cloexec).
void apply_session_options(int fd, const cfg::Proxy& p);

// FD_CLOEXEC: Asio opens and accepts sockets without it, and a track script
// or notify hook must not inherit a listener or a session (a lingering hook
// would keep the session from closing, or hold the port across a restart).
// The spawner also closes every descriptor above 2 in the child
// (vrrp/spawn.cpp), which covers the moment between socket() and this call.
void set_cloexec(int fd);

}  // namespace proxy
