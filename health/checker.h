// One active health check per backend, on the control-plane io_context.
// The check rule (what to send/expect) comes from cfg::Check, the timing from
// health::CheckSchedule (pure), and this class is the I/O around them.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cfg/config.h"
#include "health/status.h"

namespace health {

class Checker {
 public:
  // Called on the io_context thread, once per eligibility change (after
  // rise/fall smoothing) and once per change of Status::reachable, with the
  // status after the change.
  using OnChange = std::function<void(const Status&)>;

  // `label` names the backend in logs ("postgres/catalog01"). `target` is the
  // host to check and the check port (check_port, check.port or the backend's
  // port). `first_delay` spreads checks of many backends over the interval.
  // `address` is where checks connect: the backend's address as the proxy
  // resolved it, so checks judge exactly the host sessions go to and never
  // wait for a name server; target.host still names the host in the Host
  // header and for TLS.
  static std::shared_ptr<Checker> create(boost::asio::io_context& io, const cfg::Check& rule,
                                         std::string label, cfg::Endpoint target, boost::asio::ip::address address,
                                         std::chrono::milliseconds first_delay, OnChange on_change);
  virtual ~Checker() = default;

  virtual void start() = 0;
  virtual void stop() = 0;
  // Stops like stop(), except that a check waiting for its reply is left to
  // finish (its result ignored, its connection closed once the reply is
  // read; bounded by the check's timeout) instead of being closed before
  // the server answers, which Patroni logs as a traceback (patroni#2278).
  // For a check no longer wanted while the daemon runs on (a removed
  // backend's drain ending); stop() afterwards ends what is left at once.
  virtual void retire() = 0;
  // Run a check now instead of waiting for the timer (unless one is in
  // flight).
  virtual void check_now() = 0;
  // Evidence of trouble seen by the proxy (a connect to the backend refused
  // or timed out): check now, but never sooner than fast_interval (at most
  // next_delay; 100 ms while the checks are failing too) after the previous
  // check ended; until then the next check is only brought forward to that
  // point. Every refused connect of every
  // waiting client calls this (one per client every 200 ms): with
  // check_now() the checks ran back to back, hundreds of requests a second
  // to Patroni's REST API (tests/integration/test_check_evidence.py).
  virtual void check_soon() = 0;
  // Set while the proxy has no eligible backend: checks come at
  // fast_interval and one success makes this backend eligible (see
  // CheckSchedule::set_urgent). Turning it on runs a check at once.
  virtual void set_urgent(bool urgent) = 0;
  // SIGHUP with a changed check rule or target, or any SIGHUP for a TLS
  // check (ca_file is read again; unreadable, the CA loaded before stays
  // unless the TLS settings changed): the status and the
  // rise/fall state stay, so an UP backend stays eligible meanwhile. New
  // timings apply from the next check on. A new question (type, port,
  // method, path, expect_status, expect_role, TLS, target) is asked at once:
  // the last verdict answered the old one. A check in flight under the old
  // rule then ends politely and its result is ignored.
  virtual void reconfigure(const cfg::Check& rule, cfg::Endpoint target, boost::asio::ip::address address) = 0;
  virtual const Status& status() const = 0;
};

// One GET of `path` on `target` (connecting to `address`) with the check's transport (TLS settings,
// timeout; at least `min_timeout`), outside any schedule: for facts read
// once, like Patroni's version from /patroni at start. `done` runs on the
// io_context with the result (Outcome::ok for a 200, l7_status for another
// status) and the reply's body. The returned function abandons the request
// (`done` is then not called); after `done` it ends the wait for the
// server's close, if the server has not closed yet (a clean FIN either way).
using OnFetched = std::function<void(const CheckResult&, const std::string& body)>;
std::function<void()> fetch_once(boost::asio::io_context& io, const cfg::Check& rule, cfg::Endpoint target,
                                 boost::asio::ip::address address, std::string path,
                                 std::chrono::milliseconds min_timeout, OnFetched done);

// One check of `rule` as it stands (its type, method, path, expected status
// and role, TLS, timeout), outside any schedule: `vipproxy doctor` asks each
// backend this way, so its verdict is the daemon's, TLS and client
// certificate included. `done` and the returned function as for fetch_once.
std::function<void()> check_once(boost::asio::io_context& io, const cfg::Check& rule, cfg::Endpoint target,
                                 boost::asio::ip::address address, OnFetched done);

}  // namespace health
