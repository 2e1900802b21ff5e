// A small blocking HTTP/1.1 client with a deadline, for the ctl tools only
// (the daemon's checks live in health/).
#pragma once

#include <chrono>
#include <string>
#include <vector>
#include <utility>

namespace ctl {

struct HttpResult {
  bool ok = false;          // a response arrived (any status)
  unsigned status = 0;
  std::string body;
  std::string error;        // why no response arrived
  bool connected = false;   // the TCP connection was made (something listens there)
  std::chrono::microseconds latency{0};
};

HttpResult http_request(const std::string& host, unsigned short port, const std::string& method,
                        const std::string& target, const std::string& body = {},
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

// The Host header for a request to host:port: "[::1]:8405", "node1:8008".
std::string host_header(const std::string& host, unsigned short port);

// "host:port", "[v6]:port" or "host" (default_port). Throws std::invalid_argument.
std::pair<std::string, unsigned short> split_host_port(const std::string& s, unsigned short default_port);

}  // namespace ctl
