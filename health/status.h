// What a backend's health looks like to the rest of the program: the proxy
// reads `eligible`, /status shows the rest.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

namespace health {

// Layer-4 failures (nothing answered properly at TCP/TLS level) are kept apart
// from layer-7 answers (Patroni said "not primary"), like HAProxy's
// "Layer4 connection problem" vs "Layer7 wrong status".
enum class Outcome {
  none,          // no check has completed yet
  ok,            // L7 OK (expected status) or L4 OK for tcp checks
  l4_refused,    // connection refused / reset during connect
  l4_timeout,    // connect or reply did not arrive within check.timeout
  l4_error,      // other socket error (unreachable, reset mid-reply, ...)
  tls_error,     // TLS handshake or verification failed
  l7_status,     // a well-formed reply with another status (e.g. HTTP 503)
  l7_malformed,  // the reply was not valid HTTP (dropped and counted)
  l7_not_primary,  // the expected status, but Patroni's body shows PostgreSQL
                   // is not a writable primary (role replica: restarted in
                   // recovery after a crash); the node's own answer
  l7_not_running,  // the expected status, but Patroni's body shows the
                   // primary's PostgreSQL not running (crashed, starting)
  local_error,   // this daemon could not even open a socket (EMFILE...): no
                 // evidence about the backend, so it does not count as a failure
};

const char* to_string(Outcome o);
inline bool is_layer4(Outcome o) {
  return o == Outcome::l4_refused || o == Outcome::l4_timeout || o == Outcome::l4_error ||
         o == Outcome::tls_error;
}

struct CheckResult {
  Outcome outcome = Outcome::none;
  unsigned http_status = 0;        // for l7_* and ok on http checks
  std::string detail;              // human text for logs ("HTTP 503", "connection refused")
  std::chrono::microseconds latency{0};
};

inline CheckResult make_result(Outcome o, std::string detail, unsigned http_status = 0) {
  CheckResult r;
  r.outcome = o;
  r.detail = std::move(detail);
  r.http_status = http_status;
  return r;
}

// The layer a result speaks of, for /status: "L4" for a transport failure
// and for a tcp check's success (a connect is all it asks), "L7" for an HTTP
// answer, "" for no check yet or one not run (local_error): no layer was
// reached. describe() says the same in words.
const char* layer(const CheckResult& r);

// One line for logs and /status, naming the layer like HAProxy does:
// "layer 7 wrong status (HTTP 503)", "layer 4 connection refused",
// "layer 7 OK (HTTP 200)", "layer 4 OK" (tcp checks).
std::string describe(const CheckResult& r);

struct Status {
  bool up = false;                 // eligible to take traffic
  // The node answered the last check at layer 7 (any well-formed reply, even
  // a 503): this node can reach it. VRRP proxy tracking uses it to tell "no
  // primary anywhere right now" (a Patroni failover: keep the VIP, clients
  // queue) from "this node is cut off" (give the VIP away).
  bool reachable = false;
  CheckResult last;
  uint64_t checks = 0, failures = 0, malformed = 0, transitions = 0;
};

}  // namespace health
