#include "health/status.h"

namespace health {

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::none: return "none";
    case Outcome::ok: return "ok";
    case Outcome::l4_refused: return "l4_refused";
    case Outcome::l4_timeout: return "l4_timeout";
    case Outcome::l4_error: return "l4_error";
    case Outcome::tls_error: return "tls_error";
    case Outcome::l7_status: return "l7_status";
    case Outcome::l7_malformed: return "l7_malformed";
    case Outcome::l7_not_primary: return "l7_not_primary";
    case Outcome::l7_not_running: return "l7_not_running";
    case Outcome::local_error: return "local_error";
  }
  return "unknown";
}

}  // namespace health

namespace health {

const char* layer(const CheckResult& r) {
  if (r.outcome == Outcome::none || r.outcome == Outcome::local_error) return "";
  if (is_layer4(r.outcome) || (r.outcome == Outcome::ok && r.http_status == 0)) return "L4";
  return "L7";
}

std::string describe(const CheckResult& r) {
  auto with = [&](const char* what) {
    return r.detail.empty() ? std::string(what) : std::string(what) + " (" + r.detail + ")";
  };
  switch (r.outcome) {
    case Outcome::none: return "no check yet";
    case Outcome::ok:
      return r.http_status ? "layer 7 OK (HTTP " + std::to_string(r.http_status) + ")" : std::string("layer 4 OK");
    case Outcome::l4_refused: return "layer 4 connection refused";
    case Outcome::l4_timeout: return with("layer 4 timeout");
    case Outcome::l4_error: return with("layer 4 connection problem");
    case Outcome::tls_error: return with("layer 4 TLS error");
    case Outcome::l7_status: return "layer 7 wrong status (HTTP " + std::to_string(r.http_status) + ")";
    case Outcome::l7_malformed: return with("layer 7 invalid response");
    case Outcome::l7_not_primary: return with("layer 7 not a writable primary");
    case Outcome::l7_not_running: return with("layer 7 PostgreSQL not running");
    case Outcome::local_error: return with("check not run, local resource problem");
  }
  return "unknown";
}

}  // namespace health
