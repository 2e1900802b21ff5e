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

}  // namespace proxy
