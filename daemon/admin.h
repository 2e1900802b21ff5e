// The admin endpoint (loopback by default): GET / (the status page, HTML),
// GET /status (JSON) and GET /metrics (Prometheus text format). Runs on the
// control thread, beside the VRRP timers and the health checks, so a client
// can never make it block or grow: a few connection slots (admin_guard.h),
// a small request read under a short deadline, accept paused on EMFILE
// (docs/admin.md).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "daemon/admin_guard.h"

namespace daemon_ {

class Daemon;
class AdminConnection;

// X(name, help): how each admin connection ended, exactly one per accepted
// connection (so their sum is accepted minus those still open). Counted on
// the control thread, shown in /status ("admin") and /metrics
// (vipproxy_admin_connections_total{result=...}).
#define VIPPROXY_ADMIN_COUNTERS(X)                                                             \
  X(served, "Answered 2xx (the page, /status, /metrics)")                                      \
  X(unauthorized, "Answered 401: no or a wrong admin token")                                   \
  X(bad_requests, "Answered 400 (not HTTP/1.x, or a body), 404 or 405")                        \
  X(too_large, "Request over the size limit: answered 431 while reading")                      \
  X(timeouts, "Closed because the request or the reply missed its deadline")                   \
  X(evicted, "Still waiting for its request, closed to make room at the cap")                  \
  X(refused, "Closed on arrival: every slot was busy answering")                               \
  X(client_closed, "The client went away before its answer was handed over")

struct AdminCounters {
  uint64_t accepted = 0;
  uint64_t accept_errors = 0;  // failed accept() (EMFILE...): accepting pauses briefly
#define VIPPROXY_ADMIN_DECLARE(name, help) uint64_t name = 0;
  VIPPROXY_ADMIN_COUNTERS(VIPPROXY_ADMIN_DECLARE)
#undef VIPPROXY_ADMIN_DECLARE
};

struct AdminLimits {
  size_t max_connections = 32;
  size_t max_request_bytes = 4096;  // request line and headers; no body is accepted
  std::chrono::milliseconds read_timeout{2000};   // from accept to the end of the request
  std::chrono::milliseconds write_timeout{5000};  // to hand over the whole reply
  // After the reply: what the client still sends is read and dropped until
  // it closes, for at most this long and this much (RFC 9112 §9.6); closing
  // with unread bytes would reset the connection and cut the reply.
  std::chrono::milliseconds linger_timeout{1000};
  size_t linger_bytes = 64 * 1024;
  std::chrono::milliseconds accept_pause{100};    // after EMFILE/ENFILE/ENOBUFS/ENOMEM
  // TCP_DEFER_ACCEPT on the listener: the kernel hands over a connection once
  // its first bytes are in (or after about this long without any), so a
  // client is accepted with its request and never looks idle (docs/admin.md).
  std::chrono::seconds defer_accept{1};
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& io, const Daemon& d, AdminLimits limits = {});
  ~AdminServer();
  void listen();  // throws std::system_error naming the address
  void stop();    // closes the listener and every connection

  std::string status_json() const;
  std::string metrics_text() const;
  // The status page with the current /status embedded (nonce: the page's
  // Content-Security-Policy script/style nonce).
  std::string status_page(const std::string& nonce) const;

  const AdminLimits& limits() const { return limits_; }
  AdminCounters& counters() { return counters_; }
  const AdminCounters& counters() const { return counters_; }
  const std::string& token() const;
  // For AdminConnection: its request is complete / it is gone.
  void answering(uint64_t id) { admission_.answering(id); }
  void lingering(uint64_t id) { admission_.lingering(id); }
  void left(uint64_t id);

 private:
  void accept();
  void admit(boost::asio::ip::tcp::socket s);

  boost::asio::io_context& io_;
  const Daemon& daemon_;
  AdminLimits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer pause_;
  Admission admission_;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, std::shared_ptr<AdminConnection>> conns_;
  AdminCounters counters_;
  std::chrono::steady_clock::time_point last_accept_error_log_{};
  bool stopped_ = false;
};

}  // namespace daemon_
