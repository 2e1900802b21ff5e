// TCP options applied to both sides of every session.
#pragma once

#include "cfg/config.h"

namespace proxy {

// TCP_NODELAY (we forward whole protocol messages; Nagle would only add
// latency), and dead-peer detection without idle timeouts: SO_KEEPALIVE with
// TCP_KEEPIDLE/INTVL/CNT, and TCP_USER_TIMEOUT so unacknowledged data does not
// keep a session to a vanished node for the kernel's ~15 minutes of retransmits.
// Failures are ignored: an option the kernel refuses must not cost a session.
void apply_session_options(int fd, const cfg::Proxy& p);
// The same in two steps, for backend sockets: TCP_NODELAY at once, the
// dead-peer options once the session has lived a second (a short session
// never needs them, and they are five system calls).
void apply_nodelay(int fd);
void apply_dead_peer_options(int fd, const cfg::Proxy& p);

// FD_CLOEXEC, for descriptors opened without it (the proxy's own sockets are
// created with SOCK_CLOEXEC: listeners, accept4, backend sockets): a track script
// or notify hook must not inherit a listener or a session (a lingering hook
// would keep the session from closing, or hold the port across a restart).
// The spawner also closes every descriptor above 2 in the child
// (vrrp/spawn.cpp), which covers the moment between socket() and this call.
void set_cloexec(int fd);

}  // namespace proxy
