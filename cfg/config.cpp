#include "cfg/config.h"

namespace cfg {

std::string Endpoint::to_string() const {
  // An IPv6 literal needs brackets, or its last group would read as the port.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Endpoint check_target(const Proxy& p, std::size_t backend) {
  const auto& b = p.backends[backend];
  Endpoint target = b.address;
  if (b.check_port) target.port = *b.check_port;
  else if (p.check.port) target.port = *p.check.port;
  return target;
}

}  // namespace cfg
