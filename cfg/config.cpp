#include "cfg/config.h"

namespace cfg {

std::string Endpoint::to_string() const {
  // An IPv6 literal needs brackets, or its last group would read as the port.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

}  // namespace cfg
