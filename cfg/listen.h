// When two listen addresses would take one port. The loader asks it of the
// addresses as written (cross_check.cpp); the daemon asks it again of the
// addresses its listeners were bound to, since a host name
// (`localhost:5433`) and a literal (`[::1]:5433`) can be one address that
// only the lookup reveals.
#pragma once

#include <string>
#include <vector>

#include "cfg/config.h"

namespace cfg {

// Every worker binds with SO_REUSEPORT, so the kernel takes a second bind of
// the same address too and splits the clients between the two proxies: such
// a pair must be refused before it binds, or right after. True for the same
// address (an IPv6 literal in any spelling, a host name case aside) and for a
// wildcard that covers the other ("0.0.0.0" every IPv4 address, "::" both
// families unless bindv6only).
bool listens_clash(const Endpoint& a, const Endpoint& b);

// True when connecting to `backend` reaches the proxy listening on `listen`
// on this node: the same port and the same address, or a wildcard listen
// and an address that is this node's: a loopback address, "localhost", or
// one of `local` (the VIPs of the file, ours while MASTER). A remote address
// on the listen port is a database, not a loop.
bool backend_is_listener(const Endpoint& listen, const Endpoint& backend, const std::vector<std::string>& local);

// A proxy's listen address as written and as bound (numeric).
struct BoundListen {
  std::string proxy;
  Endpoint listen;
  Endpoint bound;
};
// "" when no two bound addresses clash, else why, naming both proxies and
// what each wrote.
std::string bound_listen_clash(const std::vector<BoundListen>& listens);

}  // namespace cfg
