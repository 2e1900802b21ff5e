// Over 500 lines: one test binary per component; every case uses the stand-in endpoints defined here.
// health::Checker against in-process stand-in HTTP(S)/TCP endpoints built with
// plain Asio on loopback. Every wait runs the io_context until a condition or
// a deadline; nothing sleeps.
#define BOOST_TEST_MODULE health_checker
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <atomic>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "health/checker.h"
#include "health/name_lookup.h"
#include "health/probe.h"

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using ms = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using health::Outcome;

namespace health {
std::ostream& operator<<(std::ostream& os, Outcome o) { return os << to_string(o); }
}  // namespace health

namespace {

// Run `io` until `pred()` holds or `limit` passes; returns pred().
bool run_until(asio::io_context& io, const std::function<bool()>& pred, ms limit = ms{5000}) {
  const auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() >= end) return false;
    io.restart();
    io.run_for(ms{5});
  }
  return true;
}

// Run `io` for `d` whatever happens (to show that nothing changes meanwhile).
void run_for(asio::io_context& io, ms d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) {
    io.restart();
    io.run_for(ms{5});
  }
}

// ---- the stand-in endpoint ------------------------------------------------

enum class Mode {
  ok,              // 200 with a small JSON body, then FIN
  unavailable,     // 503 (Patroni on a replica for /primary)
  garbage,         // bytes that are not HTTP
  silent,          // reads the request, never answers
  reset,           // reads the request, then RST
  close_no_reply,  // reads the request, then FIN without a reply
  big_body,        // 200 with a body far beyond the checker's body limit
  keep_open,       // 200 but ignores "Connection: close" (no FIN from us)
  delayed,         // 200 after 300 ms (a busy Patroni), then FIN
  // Patroni 3.0 on /primary while it holds the leader key (its real reply
  // shape: HTTP/1.0, no Content-Length, the JSON only for GET), with what
  // the body says during a postmaster crash (tests/fixtures/patroni/).
  patroni_primary,  // "role": "master", "state": "running"
  patroni_replica,  // "role": "replica", "state": "running" (restarted in recovery)
  patroni_crashed,  // "role": "master", "state": "crashed"
  // patroni_primary over TLS as Python's ssl closes it: a FIN, no
  // close_notify (SSLSocket.shutdown() does not unwrap).
  patroni_primary_no_close_notify,
};

// What the server saw on one connection.
struct Conn {
  std::string request;
  bool request_complete = false;
  bool responded = false;
  enum class End { open, eof, reset, other } end = End::open;
  std::size_t bytes_after_response = 0;
  bool ended_before_reply = false;  // the client left before the reply was written
};

const char* end_name(Conn::End e) {
  switch (e) {
    case Conn::End::open: return "open";
    case Conn::End::eof: return "eof";
    case Conn::End::reset: return "reset";
    case Conn::End::other: return "other";
  }
  return "?";
}

std::string reply(unsigned status, const char* reason, std::size_t body_len, bool head) {
  std::string body(body_len, 'x');
  if (body_len >= 2) body.front() = '{', body.back() = '}';
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                  "\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\nContent-Type: application/json\r\n"
                  "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

// What Patroni's BaseHTTPRequestHandler writes: the whole JSON for GET, the
// status line alone for OPTIONS and HEAD (_write_status_code_only).
std::string patroni_reply(const std::string& request, const char* role, const char* state) {
  if (request.rfind("GET ", 0) != 0) return "HTTP/1.0 200 OK\r\n\r\n";
  return std::string("HTTP/1.0 200 OK\r\nServer: BaseHTTP/0.6 Python/3.11.2\r\nContent-Type: application/json\r\n\r\n") +
         "{\"state\": \"" + state + "\", \"role\": \"" + role + "\", \"patroni\": {\"version\": \"3.0.2\"}}";
}

template <bool Tls>
class Session : public std::enable_shared_from_this<Session<Tls>> {
  using Stream = std::conditional_t<Tls, ssl::stream<tcp::socket>, tcp::socket>;

 public:
  template <class... Args>
  Session(Mode mode, std::shared_ptr<Conn> conn, tcp::socket sock, Args&... ctx)
      : mode_(mode), conn_(std::move(conn)), stream_(std::move(sock), ctx...) {}

  void start() {
    if constexpr (Tls) {
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](error_code ec) {
        if (ec) return self->ended(ec);
        self->read_request();
      });
    } else {
      read_request();
    }
  }

 private:
  tcp::socket& sock() {
    if constexpr (Tls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  void read_request() {
    asio::async_read_until(stream_, asio::dynamic_buffer(in_), "\r\n\r\n",
                           [self = this->shared_from_this()](error_code ec, std::size_t n) {
                             if (ec) return self->ended(ec);
                             self->conn_->request = self->in_.substr(0, n);
                             self->conn_->request_complete = true;
                             self->respond();
                           });
  }

  void respond() {
    const bool head = conn_->request.rfind("HEAD ", 0) == 0;
    switch (mode_) {
      case Mode::ok: return send(reply(200, "OK", 300, head), true);
      case Mode::unavailable: return send(reply(503, "Service Unavailable", 300, head), true);
      case Mode::garbage: return send("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\x01\x02\x03 not http\r\n\r\n", true);
      case Mode::big_body: return send(reply(200, "OK", 256 * 1024, head), true);
      case Mode::keep_open: return send(reply(200, "OK", 300, head), false);
      case Mode::patroni_primary: return send(patroni_reply(conn_->request, "master", "running"), true);
      case Mode::patroni_replica: return send(patroni_reply(conn_->request, "replica", "running"), true);
      case Mode::patroni_crashed: return send(patroni_reply(conn_->request, "master", "crashed"), true);
      case Mode::patroni_primary_no_close_notify:
        return send(patroni_reply(conn_->request, "master", "running"), true);
      case Mode::delayed: {
        // Reading on meanwhile tells whether the client left before the
        // reply (ended_before_reply); the reply goes out anyway, as Patroni's
        // does, then our FIN.
        wait_for_client_close();
        delay_ = std::make_shared<asio::steady_timer>(sock().get_executor(), std::chrono::milliseconds(300));
        return delay_->async_wait([self = this->shared_from_this(), head](error_code) {
          self->out_ = reply(200, "OK", 300, head);
          asio::async_write(self->stream_, asio::buffer(self->out_), [self](error_code ec, std::size_t) {
            if (!ec) self->conn_->responded = true;
            error_code ignored;
            self->sock().shutdown(tcp::socket::shutdown_send, ignored);
          });
        });
      }
      case Mode::silent: return wait_for_client_close();
      case Mode::close_no_reply: return finish_sending();
      case Mode::reset: {
        error_code ec;
        sock().set_option(asio::socket_base::linger(true, 0), ec);
        sock().close(ec);
        conn_->end = Conn::End::other;
        return;
      }
    }
  }

  void send(std::string data, bool then_close) {
    out_ = std::move(data);
    asio::async_write(stream_, asio::buffer(out_), [self = this->shared_from_this(), then_close](error_code ec, std::size_t) {
      if (ec) return self->ended(ec);
      self->conn_->responded = true;
      if (then_close) {
        self->finish_sending();
      } else {
        self->wait_for_client_close();
      }
    });
  }

  // Like Python's socketserver: shutdown(SHUT_WR) after the reply. We then
  // keep reading to learn how the client closes: EOF (FIN) or ECONNRESET (RST).
  void finish_sending() {
    if constexpr (Tls) {
      if (mode_ == Mode::patroni_primary_no_close_notify) {
        error_code ec;
        sock().shutdown(tcp::socket::shutdown_send, ec);
        return wait_for_client_close();
      }
      stream_.async_shutdown([self = this->shared_from_this()](error_code) {
        error_code ec;
        self->sock().shutdown(tcp::socket::shutdown_send, ec);
        self->wait_for_client_close();
      });
    } else {
      error_code ec;
      sock().shutdown(tcp::socket::shutdown_send, ec);
      wait_for_client_close();
    }
  }

  void wait_for_client_close() {
    sock().async_read_some(asio::buffer(scratch_), [self = this->shared_from_this()](error_code ec, std::size_t n) {
      if (ec) return self->ended(ec);
      self->conn_->bytes_after_response += n;
      self->wait_for_client_close();
    });
  }

  void ended(const error_code& ec) {
    conn_->ended_before_reply = !conn_->responded;
    if (ec == asio::error::eof) {
      conn_->end = Conn::End::eof;
    } else if (ec == asio::error::connection_reset) {
      conn_->end = Conn::End::reset;
    } else {
      conn_->end = Conn::End::other;
    }
  }

  Mode mode_;
  std::shared_ptr<Conn> conn_;
  Stream stream_;
  std::shared_ptr<asio::steady_timer> delay_;  // Mode::delayed
  std::string in_, out_;
  std::array<char, 4096> scratch_{};
};

class Server {
 public:
  explicit Server(asio::io_context& io, ssl::context* tls = nullptr)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), tls_(tls) {
    accept();
  }
  ~Server() { close(); }
  uint16_t port() const { return port_; }
  void close() {
    error_code ec;
    acceptor_.close(ec);
    retry_.cancel();
  }
  bool all_ended() const {
    for (const auto& c : conns)
      if (c->end == Conn::End::open) return false;
    return true;
  }

  Mode mode = Mode::ok;
  std::vector<std::shared_ptr<Conn>> conns;

 private:
  void accept() {
    acceptor_.async_accept([this](error_code ec, tcp::socket sock) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;  // closed
      if (ec) {
        // EMFILE and the like: try again shortly, as a real server would,
        // instead of never accepting again.
        retry_.expires_after(ms{10});
        retry_.async_wait([this](error_code wait_ec) {
          if (!wait_ec) accept();
        });
        return;
      }
      auto conn = std::make_shared<Conn>();
      conns.push_back(conn);
      if (tls_) {
        std::make_shared<Session<true>>(mode, conn, std::move(sock), *tls_)->start();
      } else {
        std::make_shared<Session<false>>(mode, conn, std::move(sock))->start();
      }
      accept();
    });
  }

  tcp::acceptor acceptor_;
  asio::steady_timer retry_{acceptor_.get_executor()};
  uint16_t port_ = acceptor_.local_endpoint().port();
  ssl::context* tls_;
};

// A port with nothing listening (bound once to get a free number, then closed).
uint16_t refused_port(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// ---- the checker under test -------------------------------------------------

cfg::Check fast_rule() {
  cfg::Check r;  // OPTIONS /primary, expect 200 (the defaults)
  r.interval = ms{50};
  r.fast_interval = ms{30};
  r.timeout = ms{300};
  r.rise = 2;
  r.fall = 3;
  return r;
}

struct Probe {
  // Without `address`, host is an address literal and checks connect there
  // (as the daemon's backend address).
  Probe(asio::io_context& io, const cfg::Check& rule, std::string host, uint16_t port, ms first = ms{0},
        std::optional<asio::ip::address> address = std::nullopt) {
    const auto at = address ? *address : asio::ip::make_address(host);
    checker = health::Checker::create(io, rule, "postgres/test", cfg::Endpoint{std::move(host), port}, at, first,
                                      [this](const health::Status& s) { changes.push_back(s); });
  }
  ~Probe() {
    if (checker) checker->stop();
  }
  const health::Status& st() const { return checker->status(); }
  std::shared_ptr<health::Checker> checker;
  std::vector<health::Status> changes;
};

// Captures what the checker logs.
struct LogCapture {
  LogCapture() {
    sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1024);
    sink->set_pattern("%l %v");
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::debug);
    previous = spdlog::default_logger();
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous); }
  std::vector<std::string> lines() { return sink->last_formatted(); }
  std::size_t count(const std::string& needle) {
    std::size_t n = 0;
    for (const auto& l : lines())
      if (l.find(needle) != std::string::npos) ++n;
    return n;
  }
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  std::shared_ptr<spdlog::logger> previous;
};

// ---- TLS material generated at test time ------------------------------------

struct SelfSigned {
  SelfSigned() {
    key = EVP_EC_gen("P-256");
    BOOST_REQUIRE(key);
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
      BOOST_REQUIRE(ext);
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
    BOOST_REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);

    char tmpl[] = "/tmp/health_checker_test_ca_XXXXXX";
    const int fd = mkstemp(tmpl);
    BOOST_REQUIRE(fd >= 0);
    ::close(fd);
    ca_file = tmpl;
    BIO* bio = BIO_new_file(ca_file.c_str(), "w");
    BOOST_REQUIRE(bio);
    PEM_write_bio_X509(bio, cert);
    BIO_free(bio);

    server_ctx.set_options(ssl::context::default_workarounds);
    BOOST_REQUIRE(SSL_CTX_use_certificate(server_ctx.native_handle(), cert) == 1);
    BOOST_REQUIRE(SSL_CTX_use_PrivateKey(server_ctx.native_handle(), key) == 1);
  }
  ~SelfSigned() {
    std::remove(ca_file.c_str());
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  std::string ca_file;
  ssl::context server_ctx{ssl::context::tls_server};
};

std::size_t checks(const Probe& p) { return p.st().checks; }

void expect_clean_closes(asio::io_context& io, Server& srv) {
  BOOST_REQUIRE(run_until(io, [&] { return srv.all_ended(); }, ms{3000}));
  for (std::size_t i = 0; i < srv.conns.size(); ++i) {
    const auto& c = *srv.conns[i];
    BOOST_TEST_CONTEXT("connection #" << i) {
      BOOST_TEST(c.request_complete);
      // Patroni logs no traceback: the client's close is a FIN (read -> EOF),
      // never an RST (read -> ECONNRESET), and it came after our reply.
      BOOST_TEST(std::string(end_name(c.end)) == "eof");
      BOOST_TEST(c.bytes_after_response == 0u);
    }
  }
}

}  // namespace

// ---- tests ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(outcome_names_and_descriptions) {
  BOOST_TEST(std::string(health::to_string(Outcome::l7_status)) == "l7_status");
  BOOST_TEST(std::string(health::to_string(Outcome::l4_refused)) == "l4_refused");
  health::CheckResult r;
  r.outcome = Outcome::l7_status;
  r.http_status = 503;
  BOOST_TEST(health::describe(r) == "layer 7 wrong status (HTTP 503)");
  r.outcome = Outcome::ok;
  r.http_status = 200;
  BOOST_TEST(health::describe(r) == "layer 7 OK (HTTP 200)");
  r.http_status = 0;
  BOOST_TEST(health::describe(r) == "layer 4 OK");
  r.outcome = Outcome::l4_refused;
  BOOST_TEST(health::describe(r) == "layer 4 connection refused");
  r.outcome = Outcome::l4_timeout;
  r.detail = "no reply within 300ms";
  BOOST_TEST(health::describe(r) == "layer 4 timeout (no reply within 300ms)");
}

// /status's "layer" says what describe() says: a tcp check's success is
// layer 4 (it was "L7"), and a check not run (our own EMFILE) or not yet
// run reached no layer (it was "L7" too).
BOOST_AUTO_TEST_CASE(layer_of_each_result) {
  health::CheckResult r;
  BOOST_TEST(std::string(health::layer(r)) == "");  // none
  r.outcome = Outcome::local_error;
  BOOST_TEST(std::string(health::layer(r)) == "");
  r.outcome = Outcome::ok;
  BOOST_TEST(std::string(health::layer(r)) == "L4");  // tcp check: connected
  r.http_status = 200;
  BOOST_TEST(std::string(health::layer(r)) == "L7");
  for (Outcome o : {Outcome::l4_refused, Outcome::l4_timeout, Outcome::l4_error, Outcome::tls_error}) {
    r.outcome = o;
    BOOST_TEST(std::string(health::layer(r)) == "L4");
  }
  r.http_status = 503;
  for (Outcome o : {Outcome::l7_status, Outcome::l7_malformed, Outcome::l7_not_primary, Outcome::l7_not_running}) {
    r.outcome = o;
    BOOST_TEST(std::string(health::layer(r)) == "L7");
  }
}

BOOST_AUTO_TEST_CASE(ok_is_up_after_first_check_and_stays) {
  asio::io_context io;
  Server srv(io);
  Probe p(io, fast_rule(), "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_TEST(p.st().up);
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(p.st().last.http_status == 200u);
  BOOST_TEST(p.st().last.latency.count() > 0);
  BOOST_REQUIRE_EQUAL(p.changes.size(), 1u);
  BOOST_TEST(p.changes[0].up);
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 6; }));
  BOOST_TEST(p.st().up);
  BOOST_TEST(p.changes.size() == 1u);
  BOOST_TEST(p.st().failures == 0u);
  p.checker->stop();
  expect_clean_closes(io, srv);
}

BOOST_AUTO_TEST_CASE(request_line_and_headers_as_configured) {
  asio::io_context io;
  Server srv(io);
  Probe p(io, fast_rule(), "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_REQUIRE(!srv.conns.empty());
  const std::string req = srv.conns[0]->request;
  BOOST_TEST_MESSAGE("request:\n" << req);
  // OPTIONS /primary as configured, sent as GET: Patroni's body is judged
  // (expect_role: auto) and Patroni sends it only to GET.
  BOOST_TEST(req.rfind("GET /primary HTTP/1.1\r\n", 0) == 0u);
  BOOST_TEST(req.find("\r\nHost: 127.0.0.1:" + std::to_string(srv.port()) + "\r\n") != std::string::npos);
  BOOST_TEST(req.find("\r\nUser-Agent: vipproxy-check\r\n") != std::string::npos);
  BOOST_TEST(req.find("\r\nConnection: close\r\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(method_as_configured_when_the_body_is_not_judged) {
  asio::io_context io;
  Server srv(io);
  cfg::Check rule = fast_rule();
  rule.expect_role = cfg::ExpectRole::any;
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_TEST(srv.conns.at(0)->request.rfind("OPTIONS /primary HTTP/1.1\r\n", 0) == 0u);
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
}

// A postmaster crash as Patroni 3.0 tells it: 200 on /primary throughout,
// the body saying "crashed", then "replica" (restarted in recovery), then
// "master" again once promoted.
BOOST_AUTO_TEST_CASE(patroni_body_decides_after_a_postmaster_crash) {
  LogCapture logs;
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::patroni_primary;
  Probe p(io, fast_rule(), "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return p.st().up; }));
  BOOST_TEST(p.st().last.detail == "HTTP 200, role master, state running");

  // PostgreSQL down, Patroni still leader: a failure among `fall`.
  srv.mode = Mode::patroni_crashed;
  const auto failures_before = p.st().failures;
  BOOST_REQUIRE(run_until(io, [&] { return !p.st().up; }));
  BOOST_TEST(p.st().last.outcome == Outcome::l7_not_running);
  BOOST_TEST(p.st().last.http_status == 200u);
  BOOST_TEST(p.st().failures - failures_before == 3u);  // fall = 3
  BOOST_TEST(p.st().reachable);
  BOOST_TEST(logs.count("layer 7 PostgreSQL not running (HTTP 200, role master, state crashed), 3 failures") == 1u);

  // Promoted again: up after rise.
  srv.mode = Mode::patroni_primary;
  BOOST_REQUIRE(run_until(io, [&] { return p.st().up; }));

  // Restarted in recovery: read-only, the node's own answer, down at once.
  srv.mode = Mode::patroni_replica;
  const auto checks_before = checks(p);
  BOOST_REQUIRE(run_until(io, [&] { return !p.st().up; }));
  BOOST_TEST(checks(p) - checks_before <= 2u);  // one, or two if one was already under way
  BOOST_TEST(p.st().last.outcome == Outcome::l7_not_primary);
  BOOST_TEST(p.st().reachable);
  BOOST_TEST(logs.count("is DOWN: layer 7 not a writable primary (HTTP 200, role replica, state running), the node's "
                        "own answer") == 1u);
  for (const auto& c : srv.conns) BOOST_TEST(c->request.rfind("GET /primary ", 0) == 0u);
  p.checker->stop();
  expect_clean_closes(io, srv);
}

BOOST_AUTO_TEST_CASE(expect_role_primary_needs_patronis_body) {
  asio::io_context io;
  Server srv(io);  // Mode::ok: a 200 whose body is not Patroni's JSON
  cfg::Check rule = fast_rule();
  rule.path = "/health";
  rule.expect_role = cfg::ExpectRole::primary;
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_TEST(!p.st().up);
  BOOST_TEST(p.st().last.outcome == Outcome::l7_malformed);
  BOOST_TEST(p.st().last.detail == "HTTP 200, body is not a JSON object");
  // The same body under auto: the status alone decides.
  rule.path = "/primary";
  rule.expect_role = cfg::ExpectRole::automatic;
  Probe q(io, rule, "127.0.0.1", srv.port());
  q.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return q.st().up; }));
  BOOST_TEST(q.st().last.detail == "HTTP 200");
}

BOOST_AUTO_TEST_CASE(unavailable_goes_down_after_fall_then_up_after_rise) {
  // HAProxy's counting: a wrong status is one failure among `fall`.
  LogCapture logs;
  asio::io_context io;
  Server srv(io);
  cfg::Check rule = fast_rule();
  rule.down_on_status = false;
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_REQUIRE(p.st().up);

  srv.mode = Mode::unavailable;
  BOOST_REQUIRE(run_until(io, [&] { return !p.st().up; }));
  BOOST_TEST(p.st().last.outcome == Outcome::l7_status);
  BOOST_TEST(p.st().last.http_status == 503u);
  BOOST_TEST(p.st().last.detail == "HTTP 503");
  BOOST_TEST(p.st().failures == 3u);  // exactly `fall` failed checks
  BOOST_REQUIRE_EQUAL(p.changes.size(), 2u);
  BOOST_TEST(!p.changes[1].up);
  BOOST_TEST(p.changes[1].last.http_status == 503u);

  // Staying down produces no more changes.
  BOOST_REQUIRE(run_until(io, [&] { return p.st().failures >= 6; }));
  BOOST_TEST(p.changes.size() == 2u);

  srv.mode = Mode::ok;
  const auto checks_before = checks(p);
  BOOST_REQUIRE(run_until(io, [&] { return p.st().up; }));
  BOOST_TEST(checks(p) - checks_before >= 2u);  // rise = 2
  BOOST_REQUIRE_EQUAL(p.changes.size(), 3u);
  BOOST_TEST(p.changes[2].up);
  BOOST_TEST(p.st().transitions == 3u);

  // Each eligibility change is logged once, naming the layer and the count.
  BOOST_TEST(logs.count("is DOWN") == 1u);
  BOOST_TEST(logs.count("is UP") == 2u);
  BOOST_TEST(logs.count("backend postgres/test is DOWN: layer 7 wrong status (HTTP 503), 3 failures") == 1u);
  BOOST_TEST(logs.count("backend postgres/test is UP: layer 7 OK (HTTP 200) after 2 successes") == 1u);
  BOOST_TEST(logs.count("backend postgres/test is UP: layer 7 OK (HTTP 200), first check") == 1u);
  for (const auto& l : logs.lines())
    if (l.find("check failed") != std::string::npos) BOOST_TEST(l.rfind("debug ", 0) == 0u);
  p.checker->stop();
  expect_clean_closes(io, srv);
}

BOOST_AUTO_TEST_CASE(refused_port_is_layer4_refused) {
  LogCapture logs;
  asio::io_context io;
  Probe p(io, fast_rule(), "127.0.0.1", refused_port(io));
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 3; }));
  BOOST_TEST(!p.st().up);
  BOOST_TEST(p.st().last.outcome == Outcome::l4_refused);
  BOOST_TEST(health::is_layer4(p.st().last.outcome));
  BOOST_TEST(p.changes.empty());  // never eligible, so no eligibility change
  BOOST_TEST(logs.count("backend postgres/test is DOWN: layer 4 connection refused, first check") == 1u);
}

BOOST_AUTO_TEST_CASE(silent_server_is_layer4_timeout_within_timeout) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::silent;
  auto rule = fast_rule();
  rule.timeout = ms{200};
  Probe p(io, rule, "127.0.0.1", srv.port());
  const auto t0 = Clock::now();
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  const auto elapsed = std::chrono::duration_cast<ms>(Clock::now() - t0);
  BOOST_TEST(p.st().last.outcome == Outcome::l4_timeout);
  BOOST_TEST(elapsed.count() >= 190);
  BOOST_TEST(elapsed.count() < 200 + 400);
  BOOST_TEST(p.st().last.latency.count() >= 190000);
  BOOST_TEST(!p.st().up);
  BOOST_TEST(srv.conns.at(0)->request_complete);
}

BOOST_AUTO_TEST_CASE(garbage_is_layer7_malformed_and_counted) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::garbage;
  Probe p(io, fast_rule(), "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 3; }));
  BOOST_TEST(p.st().last.outcome == Outcome::l7_malformed);
  BOOST_TEST(!health::is_layer4(p.st().last.outcome));
  BOOST_TEST(p.st().malformed == p.st().checks);
  BOOST_TEST(!p.st().up);
  p.checker->stop();
  // Even towards a server speaking nonsense, the close is a FIN.
  expect_clean_closes(io, srv);
}

BOOST_AUTO_TEST_CASE(reset_and_close_without_reply_are_layer4_errors) {
  for (Mode m : {Mode::reset, Mode::close_no_reply}) {
    BOOST_TEST_CONTEXT("mode " << static_cast<int>(m)) {
      asio::io_context io;
      Server srv(io);
      srv.mode = m;
      Probe p(io, fast_rule(), "127.0.0.1", srv.port());
      p.checker->start();
      BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
      BOOST_TEST(p.st().last.outcome == Outcome::l4_error);
      BOOST_TEST_MESSAGE("detail: " << p.st().last.detail);
      BOOST_TEST(!p.st().up);
    }
  }
}

BOOST_AUTO_TEST_CASE(head_reply_has_no_body_to_wait_for) {
  asio::io_context io;
  Server srv(io);
  auto rule = fast_rule();
  rule.method = "HEAD";
  rule.path = "/health";
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(p.st().up);
  // The server announced Content-Length: 300 without a body; a client that
  // waited for it would time out.
  BOOST_TEST(p.st().last.latency < std::chrono::microseconds(std::chrono::milliseconds(150)));
  BOOST_TEST(srv.conns.at(0)->request.rfind("HEAD /health HTTP/1.1\r\n", 0) == 0u);
  p.checker->stop();
  expect_clean_closes(io, srv);
}

BOOST_AUTO_TEST_CASE(big_body_is_judged_by_status_and_drained) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::big_body;
  auto rule = fast_rule();
  rule.method = "GET";
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(p.st().last.http_status == 200u);
  BOOST_TEST(p.st().up);
  p.checker->stop();
  // 256 KiB were read to the end before closing: FIN, not RST.
  expect_clean_closes(io, srv);
}

BOOST_AUTO_TEST_CASE(server_ignoring_connection_close_still_gets_fin) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::keep_open;
  auto rule = fast_rule();
  rule.interval = ms{500};
  rule.timeout = ms{200};
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  // The result does not wait for the server's close.
  BOOST_TEST(p.st().last.latency < std::chrono::microseconds(std::chrono::milliseconds(150)));
  // The client gives up waiting for the server's EOF at the check deadline
  // and closes with nothing unread.
  BOOST_REQUIRE(run_until(io, [&] { return srv.all_ended(); }, ms{2000}));
  BOOST_TEST(std::string(end_name(srv.conns.at(0)->end)) == "eof");
}

// stop() ends the attempts that already reported and still wait for the
// server's EOF too: a server that ignores `Connection: close` held the
// io_context, and with it the daemon's SIGTERM (hard_stop_after 0s
// included), for the whole check timeout. The close is still a FIN.
// While the checks fail too (a switchover: the old primary's Patroni says
// PostgreSQL is stopping while its clients' connects are refused), evidence
// brings checks 100 ms apart, not fast_interval: the backend is DOWN, and
// its proxy's checks urgent, long before the new primary is ready.
BOOST_AUTO_TEST_CASE(check_soon_confirms_a_failing_backend_quickly) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::patroni_primary;
  auto rule = fast_rule();
  rule.interval = ms{10000};
  rule.fast_interval = ms{2000};
  rule.fall = 3;
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_REQUIRE(p.st().up);
  srv.mode = Mode::patroni_crashed;  // counted toward fall, not definitive
  p.checker->check_now();
  BOOST_REQUIRE(run_until(io, [&] { return p.st().failures >= 1; }));
  BOOST_REQUIRE(p.st().up);
  // Refused connects every 10 ms: two more failures within a second (at
  // fast_interval they would take 4 s).
  const auto end = Clock::now() + ms{1500};
  while (p.st().up && Clock::now() < end) {
    p.checker->check_soon();
    run_for(io, ms{10});
  }
  BOOST_TEST(!p.st().up);
  BOOST_TEST(p.st().last.outcome == Outcome::l7_not_running);
}

BOOST_AUTO_TEST_CASE(stop_ends_a_check_waiting_for_the_servers_close) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::keep_open;
  auto rule = fast_rule();
  rule.interval = ms{10000};
  rule.timeout = ms{5000};
  std::weak_ptr<health::Checker> weak;
  {
    Probe p(io, rule, "127.0.0.1", srv.port());
    weak = p.checker;
    p.checker->start();
    BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
    BOOST_TEST(p.st().last.outcome == Outcome::ok);
    run_for(io, ms{50});
    BOOST_REQUIRE(!srv.all_ended());  // the check waits for the server's close
    p.checker->stop();
    // Old code: open until the 5 s deadline.
    BOOST_REQUIRE(run_until(io, [&] { return srv.all_ended(); }, ms{1000}));
  }
  BOOST_TEST(std::string(end_name(srv.conns.at(0)->end)) == "eof");
  srv.close();
  io.restart();
  io.run_for(ms{1000});
  BOOST_TEST(io.stopped());  // nothing left pending
  BOOST_TEST(weak.expired());
}

BOOST_AUTO_TEST_CASE(tcp_check) {
  asio::io_context io;
  Server srv(io);
  auto rule = fast_rule();
  rule.type = cfg::CheckType::tcp;
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_TEST(p.st().up);
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(p.st().last.http_status == 0u);
  BOOST_TEST(health::describe(p.st().last) == "layer 4 OK");
  BOOST_REQUIRE(run_until(io, [&] { return srv.all_ended(); }, ms{2000}));
  BOOST_TEST(std::string(end_name(srv.conns.at(0)->end)) == "eof");

  Probe q(io, rule, "127.0.0.1", refused_port(io));
  q.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(q) >= 1; }));
  BOOST_TEST(q.st().last.outcome == Outcome::l4_refused);
}

// The daemon gives each checker the backend's address as the proxy resolved
// it: checks connect there (they judge the host sessions go to, whatever the
// name resolves to later) and never look the name up; the name is still the
// request's Host. Also after a reconfigure (a reload changing check_port).
BOOST_AUTO_TEST_CASE(given_address_is_checked_without_a_lookup) {
  asio::io_context io;
  auto asked = std::make_shared<std::atomic<int>>(0);
  health::name_lookups(io).resolve_with([asked](const std::string&) {
    ++*asked;
    return health::NameLookups::Found{asio::error::host_not_found, {}};
  });
  Server srv(io);
  Probe p(io, fast_rule(), "catalog01.example", srv.port(), ms{0}, asio::ip::make_address("127.0.0.1"));
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(srv.conns.at(0)->request.find("\r\nHost: catalog01.example:" + std::to_string(srv.port()) + "\r\n") !=
             std::string::npos);
  Server other(io);
  p.checker->reconfigure(fast_rule(), cfg::Endpoint{"catalog01.example", other.port()},
                         asio::ip::make_address("127.0.0.1"));
  BOOST_REQUIRE(run_until(io, [&] { return !other.conns.empty() && checks(p) >= 4; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(asked->load() == 0);
}

BOOST_AUTO_TEST_CASE(first_delay_and_check_now) {
  asio::io_context io;
  Server srv(io);
  auto rule = fast_rule();
  rule.interval = ms{10000};
  rule.fast_interval = ms{10000};
  Probe p(io, rule, "127.0.0.1", srv.port(), ms{150});
  const auto t0 = Clock::now();
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_TEST(std::chrono::duration_cast<ms>(Clock::now() - t0).count() >= 140);
  // Nothing more for a while: the interval is 10 s.
  run_for(io, ms{200});
  BOOST_TEST(checks(p) == 1u);
  // check_now runs one at once and re-arms the timer afterwards.
  p.checker->check_now();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }, ms{1000}));
  run_for(io, ms{200});
  BOOST_TEST(checks(p) == 2u);
  // check_now while a check is in flight does not start a second one.
  srv.mode = Mode::silent;
  p.checker->check_now();
  p.checker->check_now();
  BOOST_REQUIRE(run_until(io, [&] { return srv.conns.size() >= 3; }, ms{1000}));
  p.checker->check_now();
  run_for(io, ms{100});
  BOOST_TEST(srv.conns.size() == 3u);
}

// check_soon is what the proxy calls on every refused connect (one per
// waiting client every 200 ms): it brings the next check forward to
// fast_interval after the last one, and no closer. Before, the daemon called
// check_now for each, and checks ran back to back against Patroni
// (tests/integration/test_check_evidence.py).
BOOST_AUTO_TEST_CASE(check_soon_brings_the_check_forward_without_a_storm) {
  asio::io_context io;
  Server srv(io);
  auto rule = fast_rule();
  rule.interval = ms{10000};
  rule.fast_interval = ms{1000};
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }, ms{1000}));
  // A burst of evidence, a refused connect every 10 ms: no check meanwhile
  // (the old check_now ran one per call here, 30).
  const auto before = checks(p);
  const auto burst_start = Clock::now();
  for (int i = 0; i < 30; ++i) {
    p.checker->check_soon();
    run_for(io, ms{10});
  }
  // (A machine so slow that the burst outlasted fast_interval proves nothing.)
  if (Clock::now() - burst_start < ms{900}) BOOST_TEST(checks(p) == 1u);
  BOOST_TEST(srv.conns.size() <= 2u);
  // And the check does come at fast_interval, not at the 10 s interval.
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) > before; }, ms{3000}));
  // Evidence long after the last check runs one at once.
  run_for(io, ms{1100});
  const auto later = checks(p);
  p.checker->check_soon();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) > later; }, ms{800}));
  BOOST_TEST(p.st().up);
}

// A reload that changes what is asked (path, status, port...) keeps the
// backend's state, but the answer to the old question says nothing about the
// new one: the new rule is checked at once, and a check still in flight under
// the old rule is not counted. Before, an UP backend stayed eligible under
// the new rule until the next interval (and, with a check in flight, until
// that check's timeout, then only a failure toward fall).
BOOST_AUTO_TEST_CASE(reconfigure_with_another_question_checks_at_once) {
  asio::io_context io;
  Server srv(io);
  auto rule = fast_rule();
  rule.interval = ms{10000};
  rule.fast_interval = ms{10000};
  rule.timeout = ms{5000};
  Probe p(io, rule, "127.0.0.1", srv.port());
  const cfg::Endpoint target{"127.0.0.1", srv.port()};
  const auto address = asio::ip::make_address("127.0.0.1");
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_REQUIRE(p.st().up);

  // Timings alone: no check at once.
  auto slower = rule;
  slower.interval = ms{20000};
  p.checker->reconfigure(slower, target, address);
  run_for(io, ms{200});
  BOOST_TEST(checks(p) == 1u);

  // Another expected status, which this server does not answer: judged at
  // once (down_on_status), not after the 20 s interval.
  auto other = slower;
  other.expect_status = 204;
  p.checker->reconfigure(other, target, address);
  BOOST_REQUIRE(run_until(io, [&] { return !p.st().up; }, ms{2000}));
  BOOST_TEST(p.st().last.outcome == Outcome::l7_status);

  // Back to 200 with a check in flight under the 204 rule (the server holds
  // it): its answer is not waited for, the new rule is asked at once.
  srv.mode = Mode::silent;
  const auto held = srv.conns.size() + 1;
  p.checker->check_now();
  BOOST_REQUIRE(run_until(io, [&] { return srv.conns.size() == held && srv.conns.back()->request_complete; }));
  const auto before = checks(p);
  srv.mode = Mode::ok;
  p.checker->reconfigure(slower, target, address);
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) > before; }, ms{2000}));
  BOOST_TEST(srv.conns.size() == held + 1);
  BOOST_TEST(p.st().last.outcome == Outcome::ok);  // the new check's, not the held one's timeout
}

BOOST_AUTO_TEST_CASE(stop_cancels_in_flight_check_and_releases_everything) {
  asio::io_context io;
  std::weak_ptr<health::Checker> weak;
  auto srv = std::make_unique<Server>(io);
  srv->mode = Mode::silent;
  {
    auto rule = fast_rule();
    rule.timeout = ms{5000};
    Probe p(io, rule, "127.0.0.1", srv->port());
    weak = p.checker;
    p.checker->start();
    BOOST_REQUIRE(run_until(io, [&] { return !srv->conns.empty() && srv->conns[0]->request_complete; }));
    p.checker->stop();
    run_for(io, ms{100});
    BOOST_TEST(checks(p) == 0u);  // the cancelled check reports nothing
    BOOST_TEST(p.changes.empty());
  }
  // The server saw the connection closed cleanly, and nothing is left
  // pending: the io_context runs out of work and the checker is gone.
  BOOST_REQUIRE(run_until(io, [&] { return srv->all_ended(); }, ms{1000}));
  BOOST_TEST(std::string(end_name(srv->conns[0]->end)) == "eof");
  srv->close();
  io.restart();
  io.run_for(ms{2000});
  BOOST_TEST(io.stopped());
  BOOST_TEST(weak.expired());
}

BOOST_AUTO_TEST_CASE(tls_without_verification) {
  SelfSigned pki;
  asio::io_context io;
  Server srv(io, &pki.server_ctx);
  auto rule = fast_rule();
  rule.tls.enabled = true;
  rule.tls.verify = false;
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST_MESSAGE("detail: " << p.st().last.detail);
  BOOST_TEST(p.st().up);
  p.checker->stop();
  expect_clean_closes(io, srv);
}

// Patroni's reply to GET has no Content-Length: its end is the close, and
// over TLS that close comes without close_notify.
BOOST_AUTO_TEST_CASE(tls_reply_ended_by_a_close_without_close_notify) {
  SelfSigned pki;
  asio::io_context io;
  Server srv(io, &pki.server_ctx);
  srv.mode = Mode::patroni_primary_no_close_notify;
  auto rule = fast_rule();
  rule.tls.enabled = true;
  rule.tls.verify = false;
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(p.st().last.detail == "HTTP 200, role master, state running");
  BOOST_TEST(p.st().up);
}

BOOST_AUTO_TEST_CASE(tls_with_verification) {
  SelfSigned pki;
  asio::io_context io;
  Server srv(io, &pki.server_ctx);
  auto rule = fast_rule();
  rule.tls.enabled = true;
  rule.tls.verify = true;

  // Default store: our self-signed certificate is not trusted.
  Probe untrusted(io, rule, "127.0.0.1", srv.port());
  untrusted.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(untrusted) >= 1; }));
  BOOST_TEST(untrusted.st().last.outcome == Outcome::tls_error);
  BOOST_TEST_MESSAGE("untrusted: " << untrusted.st().last.detail);
  untrusted.checker->stop();

  // Trusted via ca_file, verified by name (SNI localhost) and by address.
  rule.tls.ca_file = pki.ca_file;
  rule.tls.server_name = "localhost";
  Probe by_name(io, rule, "127.0.0.1", srv.port());
  by_name.checker->start();
  rule.tls.server_name.clear();
  Probe by_ip(io, rule, "127.0.0.1", srv.port());
  by_ip.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(by_name) >= 1 && checks(by_ip) >= 1; }));
  BOOST_TEST(by_name.st().last.outcome == Outcome::ok);
  BOOST_TEST(by_ip.st().last.outcome == Outcome::ok);
  BOOST_TEST_MESSAGE("by name: " << by_name.st().last.detail << "; by ip: " << by_ip.st().last.detail);

  // Trusted CA but the wrong name.
  rule.tls.server_name = "catalog99.example";
  Probe wrong_name(io, rule, "127.0.0.1", srv.port());
  wrong_name.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(wrong_name) >= 1; }));
  BOOST_TEST(wrong_name.st().last.outcome == Outcome::tls_error);
  BOOST_TEST(wrong_name.st().last.detail.find("does not match catalog99.example") != std::string::npos);
  BOOST_TEST_MESSAGE("wrong name: " << wrong_name.st().last.detail);

  // A missing ca_file is a TLS error on every check, not a crash.
  rule.tls.ca_file = "/nonexistent/ca.pem";
  Probe no_ca(io, rule, "127.0.0.1", srv.port());
  no_ca.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(no_ca) >= 2; }));
  BOOST_TEST(no_ca.st().last.outcome == Outcome::tls_error);
}

// ca_file naming a directory, as HAProxy's ca-file may: its .pem, .crt and
// .cer files are loaded (hidden files and other names skipped); a directory
// without any is a TLS error naming it. Before, every check failed with
// "cannot load ca_file DIR" (OpenSSL reads files only).
BOOST_AUTO_TEST_CASE(tls_ca_file_directory) {
  SelfSigned pki, other;
  asio::io_context io;
  Server srv(io, &pki.server_ctx);
  char tmpl[] = "/tmp/health_checker_test_cadir_XXXXXX";
  BOOST_REQUIRE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  auto copy = [&](const std::string& from, const std::string& name) {
    std::ifstream in(from);
    std::ofstream(dir + "/" + name) << in.rdbuf();
  };
  std::ofstream(dir + "/README.txt") << "not a certificate\n";
  copy(pki.ca_file, ".hidden.pem");  // skipped, as HAProxy does
  auto rule = fast_rule();
  rule.tls.enabled = true;
  rule.tls.verify = true;
  rule.tls.ca_file = dir;
  {
    Probe none(io, rule, "127.0.0.1", srv.port());
    none.checker->start();
    BOOST_REQUIRE(run_until(io, [&] { return checks(none) >= 1; }));
    BOOST_TEST(none.st().last.outcome == Outcome::tls_error);
    BOOST_TEST(none.st().last.detail.find("ca_file " + dir + " is a directory without a .pem, .crt or .cer file") !=
                   std::string::npos,
               none.st().last.detail);
  }
  // Another CA only: read, and it does not trust the server.
  copy(other.ca_file, "other.pem");
  {
    Probe untrusted(io, rule, "127.0.0.1", srv.port());
    untrusted.checker->start();
    BOOST_REQUIRE(run_until(io, [&] { return checks(untrusted) >= 1; }));
    BOOST_TEST(untrusted.st().last.outcome == Outcome::tls_error);
    BOOST_TEST(untrusted.st().last.detail.find("certificate verify failed") != std::string::npos,
               untrusted.st().last.detail);
  }
  // Ours as .crt and .cer (both subjects are CN=localhost: the other one
  // goes, or OpenSSL may try it first and fail).
  std::remove((dir + "/other.pem").c_str());
  copy(pki.ca_file, "ours.crt");
  copy(pki.ca_file, "ours-again.cer");
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok, p.st().last.detail);
  p.checker->stop();
  for (const char* f : {"README.txt", ".hidden.pem", "ours.crt", "ours-again.cer"}) std::remove((dir + "/" + f).c_str());
  ::rmdir(dir.c_str());
}

// ---- check.tls.cert_file / key_file ------------------------------------------

// PEM files of a test's client certificate and keys, removed at the end.
struct ClientFiles {
  explicit ClientFiles(const SelfSigned& mine, const SelfSigned& other) {
    char tmpl[] = "/tmp/health_checker_test_client_XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    write("cert.pem", [&](BIO* b) { PEM_write_bio_X509(b, mine.cert); });
    write("key.pem", [&](BIO* b) { PEM_write_bio_PrivateKey(b, mine.key, nullptr, nullptr, 0, nullptr, nullptr); });
    write("both.pem", [&](BIO* b) {
      PEM_write_bio_X509(b, mine.cert);
      PEM_write_bio_PrivateKey(b, mine.key, nullptr, nullptr, 0, nullptr, nullptr);
    });
    write("key-first.pem", [&](BIO* b) {
      PEM_write_bio_PrivateKey(b, mine.key, nullptr, nullptr, 0, nullptr, nullptr);
      PEM_write_bio_X509(b, mine.cert);
    });
    write("other.key", [&](BIO* b) { PEM_write_bio_PrivateKey(b, other.key, nullptr, nullptr, 0, nullptr, nullptr); });
    write("encrypted.key", [&](BIO* b) {
      char pass[] = "secret";
      PEM_write_bio_PrivateKey(b, mine.key, EVP_aes_256_cbc(), nullptr, 0, nullptr, pass);
    });
    write("garbage.pem", [](BIO* b) { BIO_puts(b, "not a PEM file\n"); });
  }
  ~ClientFiles() {
    for (const char* f : {"cert.pem", "key.pem", "both.pem", "key-first.pem", "other.key", "encrypted.key", "garbage.pem"})
      std::remove(path(f).c_str());
    ::rmdir(dir.c_str());
  }
  template <class F>
  void write(const char* name, F f) {
    BIO* b = BIO_new_file(path(name).c_str(), "w");
    BOOST_REQUIRE(b);
    f(b);
    BIO_free(b);
  }
  std::string path(const char* name) const { return dir + "/" + name; }
  std::string dir;
};

// What make_tls_context says about each client certificate setup: usable,
// or a refusal that names the file and the fix. Never a passphrase prompt
// (OpenSSL's default reads the terminal: the daemon would hang).
BOOST_AUTO_TEST_CASE(tls_client_certificate_files) {
  SelfSigned mine, other;
  ClientFiles f(mine, other);
  cfg::Check rule = fast_rule();
  rule.tls.enabled = true;
  rule.tls.verify = false;
  auto error_with = [&](const std::string& cert, const std::string& key) {
    rule.tls.cert_file = cert;
    rule.tls.key_file = key;
    std::string error;
    auto ctx = health::probe::make_tls_context(rule, error);
    BOOST_TEST_MESSAGE(cert << " + " << key << ": " << (error.empty() ? "ok" : error));
    BOOST_TEST(ctx);
    return error;
  };
  auto has = [](const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; };
  BOOST_TEST(error_with(f.path("cert.pem"), f.path("key.pem")) == "");
  BOOST_TEST(error_with(f.path("both.pem"), "") == "");  // HAProxy's crt: the key in the same PEM
  BOOST_TEST(error_with(f.path("key-first.pem"), "") == "");  // in either order
  std::string e = error_with(f.path("cert.pem"), f.path("other.key"));
  BOOST_TEST(has(e, "the key in " + f.path("other.key") + " does not match the certificate in " + f.path("cert.pem")));
  e = error_with(f.path("cert.pem"), "");
  BOOST_TEST(has(e, "cert_file " + f.path("cert.pem") + " holds no private key"));
  BOOST_TEST(has(e, "key_file"));
  e = error_with(f.path("cert.pem"), f.path("encrypted.key"));
  BOOST_TEST(has(e, f.path("encrypted.key") + " is encrypted, and vipproxy has no passphrase support"));
  e = error_with(f.path("nonexistent.pem"), f.path("key.pem"));
  BOOST_TEST(has(e, "cannot read cert_file " + f.path("nonexistent.pem") + ": No such file or directory"));
  e = error_with(f.path("cert.pem"), f.path("nonexistent.key"));
  BOOST_TEST(has(e, "cannot read key_file " + f.path("nonexistent.key")));
  e = error_with(f.path("garbage.pem"), f.path("key.pem"));
  BOOST_TEST(has(e, "cannot load cert_file " + f.path("garbage.pem")));
  e = error_with(f.path("cert.pem"), f.path("garbage.pem"));
  BOOST_TEST(has(e, "cannot load key_file " + f.path("garbage.pem")));
}

// A checker whose key does not match fails every check with that reason
// (the backend stays down), and says so in the log once, not at every check.
// (Until this test, there was no client certificate at all.)
BOOST_AUTO_TEST_CASE(tls_client_key_mismatch_fails_the_check_logged_once) {
  SelfSigned server, mine, other;
  ClientFiles f(mine, other);
  LogCapture log;
  asio::io_context io;
  Server srv(io, &server.server_ctx);
  cfg::Check rule = fast_rule();
  rule.tls.enabled = true;
  rule.tls.verify = false;
  rule.tls.cert_file = f.path("cert.pem");
  rule.tls.key_file = f.path("other.key");
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 3; }));
  BOOST_TEST(p.st().last.outcome == Outcome::tls_error);
  BOOST_TEST(p.st().last.detail.find("does not match the certificate") != std::string::npos);
  BOOST_TEST(!p.st().up);
  // The setup error once, and the DOWN transition: not a line per check
  // (above debug, the level of every failed check's line).
  auto above_debug = [&] {
    std::size_t n = 0;
    for (const auto& l : log.lines())
      if (!l.starts_with("debug ") && l.find("does not match the certificate") != std::string::npos) ++n;
    return n;
  };
  BOOST_TEST(above_debug() == 2u);
  BOOST_TEST(log.count("error backend postgres/test: the key in") == 1u);
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 6; }));
  BOOST_TEST(above_debug() == 2u);
}

// Reloads in a row (every SIGHUP tells a TLS check to read its CA again)
// do not push the next check back: it stays due when it was. Before, each
// reconfigure re-armed the timer a whole interval from then.
BOOST_AUTO_TEST_CASE(reconfigure_in_a_row_does_not_postpone_the_checks) {
  asio::io_context io;
  Server srv(io);
  auto rule = fast_rule();
  rule.interval = ms{200};
  rule.fast_interval = ms{200};
  Probe p(io, rule, "127.0.0.1", srv.port());
  const cfg::Endpoint target{"127.0.0.1", srv.port()};
  const auto address = asio::ip::make_address("127.0.0.1");
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  const auto before = checks(p);
  const auto end = Clock::now() + ms{1200};
  while (Clock::now() < end) {
    p.checker->reconfigure(rule, target, address);
    run_for(io, ms{20});
  }
  BOOST_TEST(checks(p) >= before + 2);
}

// A reload re-reads check.tls.ca_file even when the configuration did not
// change: renewing the CA bundle in place and `systemctl reload` is how
// certificates are rotated (HAProxy's reload reads it again too). Before,
// the file was read only when the checker was made, and a restart was the
// only way to trust the new CA. A file that cannot be read at a reload
// keeps the CA loaded before.
BOOST_AUTO_TEST_CASE(reconfigure_reads_the_ca_file_again) {
  SelfSigned old_ca, new_ca;
  asio::io_context io;
  Server srv(io, &new_ca.server_ctx);  // the server already has its new certificate
  char tmpl[] = "/tmp/health_checker_test_bundle_XXXXXX";
  const int fd = mkstemp(tmpl);
  BOOST_REQUIRE(fd >= 0);
  ::close(fd);
  const std::string bundle = tmpl;
  const auto install = [&](const std::string& from) {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(bundle, std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
  };
  install(old_ca.ca_file);
  auto rule = fast_rule();
  rule.tls.enabled = true;
  rule.tls.ca_file = bundle;
  rule.tls.server_name = "localhost";
  Probe p(io, rule, "127.0.0.1", srv.port());
  const cfg::Endpoint target{"127.0.0.1", srv.port()};
  const auto address = asio::ip::make_address("127.0.0.1");
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1; }));
  BOOST_TEST(p.st().last.outcome == Outcome::tls_error);  // signed by a CA not in the bundle yet

  install(new_ca.ca_file);  // the bundle renewed in place
  p.checker->reconfigure(rule, target, address);  // a reload, same configuration
  BOOST_REQUIRE(run_until(io, [&] { return p.st().last.outcome == Outcome::ok; }, ms{2000}));

  // The bundle unreadable at the next reload: the CA loaded before stays.
  std::remove(bundle.c_str());
  p.checker->reconfigure(rule, target, address);
  const auto before = checks(p);
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= before + 2; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(p.st().up);
}

BOOST_AUTO_TEST_CASE(plain_http_against_tls_server_fails_cleanly) {
  SelfSigned pki;
  asio::io_context io;
  Server srv(io, &pki.server_ctx);
  Probe p(io, fast_rule(), "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_TEST(p.st().last.outcome != Outcome::ok);
  BOOST_TEST(!p.st().up);
  BOOST_TEST_MESSAGE("plain to TLS: " << health::to_string(p.st().last.outcome) << " " << p.st().last.detail);
}

BOOST_AUTO_TEST_CASE(a_503_from_an_up_backend_takes_it_down_at_once_by_default) {
  LogCapture logs;
  asio::io_context io;
  Server srv(io);
  Probe p(io, fast_rule(), "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_REQUIRE(p.st().up);
  const auto failures_before = p.st().failures;
  srv.mode = Mode::unavailable;
  BOOST_REQUIRE(run_until(io, [&] { return !p.st().up; }));
  BOOST_TEST(p.st().failures - failures_before == 1u);  // not `fall` (3) of them
  BOOST_TEST(p.st().reachable);  // it answered: the node is reachable, just not primary
  BOOST_TEST(p.st().last.http_status == 503u);
  BOOST_TEST(logs.count("backend postgres/test is DOWN: layer 7 wrong status (HTTP 503), the node's own answer") == 1u);
  p.checker->stop();
  expect_clean_closes(io, srv);
}

BOOST_AUTO_TEST_CASE(layer4_failures_still_need_fall) {
  asio::io_context io;
  Server srv(io);
  Probe p(io, fast_rule(), "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 2; }));
  BOOST_REQUIRE(p.st().up);
  const auto failures_before = p.st().failures;
  srv.mode = Mode::garbage;  // not a status answer: counted toward fall
  BOOST_REQUIRE(run_until(io, [&] { return !p.st().up; }));
  BOOST_TEST(p.st().failures - failures_before == 3u);
  BOOST_TEST(!p.st().reachable);
  p.checker->stop();
  expect_clean_closes(io, srv);
}

// The daemon out of descriptors (a worker's accept4() takes each one freed):
// the check cannot open its socket, which says nothing about the backend. It
// is not counted, the backend stays up even with fall 1, and checks resume
// once descriptors are free again. The socket a check connects with is the
// one it opened (asio's range connect would close and reopen it, and report
// a failed open as a layer 4 "Operation canceled").
//
// Deterministic: checks run only when the test asks (10 s intervals), the
// descriptor table is filled while nothing is in flight (the stand-in server
// has closed its side of every connection), and refilled right before each
// attempt, as the worker's accept4() would. With the default interval a check
// could start just before the fill, or take the descriptor the server freed
// when it closed the previous connection; then it connected and timed out
// (CI, 2026-12-02, ~1 run in 2 under ASan).
BOOST_AUTO_TEST_CASE(out_of_descriptors_is_no_evidence) {
  asio::io_context io;
  Server srv(io);
  auto rule = fast_rule();
  rule.fall = 1;
  rule.interval = ms{10000};
  rule.fast_interval = ms{10000};
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) >= 1 && srv.all_ended(); }));
  BOOST_REQUIRE(p.st().up);
  const auto checks_before = p.st().checks;
  const auto failures_before = p.st().failures;

  rlimit saved{};
  BOOST_REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  rlimit low = saved;
  low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 1024);
  BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::vector<int> filler;
  const auto take_every_free_descriptor = [&] {
    for (int fd; (fd = ::dup(0)) >= 0;) filler.push_back(fd);
    return errno == EMFILE;
  };
  bool all_taken = true;
  std::vector<Outcome> during;
  for (int attempt = 0; attempt < 3; ++attempt) {
    all_taken = take_every_free_descriptor() && all_taken;
    p.checker->check_now();
    run_for(io, ms{50});
    during.push_back(p.st().last.outcome);
  }
  const bool up_during = p.st().up;
  const auto checks_during = p.st().checks, failures_during = p.st().failures;
  for (int fd : filler) ::close(fd);
  BOOST_REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);

  BOOST_TEST(all_taken);
  for (const Outcome o : during) BOOST_TEST(o == Outcome::local_error);
  BOOST_TEST(up_during);
  BOOST_TEST(checks_during == checks_before);
  BOOST_TEST(failures_during == failures_before);
  BOOST_TEST(srv.conns.size() == 1u);  // no attempt reached the server
  p.checker->check_now();
  BOOST_REQUIRE(run_until(io, [&] { return checks(p) > checks_before; }));
  BOOST_TEST(p.st().last.outcome == Outcome::ok);
  BOOST_TEST(p.st().up);
}

// retire() (a removed backend's drain has ended): the check waiting for its
// reply is left to finish, the reply read and the server's close awaited,
// where stop() closes it under the server (which Patroni logs as a
// traceback, patroni#2278). Either way its result is not reported and no
// check follows.
BOOST_AUTO_TEST_CASE(retire_lets_the_check_in_flight_finish_stop_does_not) {
  for (const bool retire : {true, false}) {
    BOOST_TEST_CONTEXT((retire ? "retire" : "stop")) {
      asio::io_context io;
      Server srv(io);
      srv.mode = Mode::delayed;
      auto rule = fast_rule();
      rule.timeout = ms{2000};
      Probe p(io, rule, "127.0.0.1", srv.port());
      p.checker->start();
      BOOST_REQUIRE(run_until(io, [&] { return !srv.conns.empty() && srv.conns[0]->request_complete; }));
      if (retire)
        p.checker->retire();
      else
        p.checker->stop();
      BOOST_REQUIRE(run_until(io, [&] { return srv.all_ended(); }, ms{3000}));
      run_for(io, ms{200});
      BOOST_TEST(srv.conns.size() == 1u);  // no check after
      BOOST_TEST(p.changes.empty());
      BOOST_TEST(p.st().checks == 0u);
      if (retire) {
        BOOST_TEST(srv.conns[0]->responded);
        BOOST_TEST(!srv.conns[0]->ended_before_reply);
        BOOST_TEST(std::string(end_name(srv.conns[0]->end)) == "eof");
      } else {
        BOOST_TEST(srv.conns[0]->ended_before_reply);  // closed under the server
      }
    }
  }
  // A check that has its reply and only waits for a server that does not
  // close (it ignores `Connection: close`) is closed at retire(), as at
  // stop(), not after the check's timeout.
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::keep_open;
  auto rule = fast_rule();
  rule.timeout = ms{5000};
  rule.interval = ms{5000};
  Probe p(io, rule, "127.0.0.1", srv.port());
  p.checker->start();
  BOOST_REQUIRE(run_until(io, [&] { return p.st().checks == 1u; }));
  run_for(io, ms{50});
  BOOST_REQUIRE(!srv.all_ended());
  p.checker->retire();
  BOOST_REQUIRE(run_until(io, [&] { return srv.all_ended(); }, ms{1000}));
  BOOST_TEST(std::string(end_name(srv.conns.at(0)->end)) == "eof");
}

// fetch_once: one GET outside any schedule (the daemon reads Patroni's
// version from /patroni with it), with the body handed over and the same
// clean close as checks.
BOOST_AUTO_TEST_CASE(fetch_once_hands_over_status_and_body) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::patroni_primary;
  auto rule = fast_rule();
  rule.method = "OPTIONS";
  rule.path = "/primary";
  std::optional<health::CheckResult> got;
  std::string body;
  health::fetch_once(io, rule, {"127.0.0.1", srv.port()}, asio::ip::make_address("127.0.0.1"), "/patroni", ms{2000},
                     [&](const health::CheckResult& r, const std::string& b) {
                       got = r;
                       body = b;
                     });
  BOOST_REQUIRE(run_until(io, [&] { return got.has_value(); }));
  BOOST_TEST(got->outcome == Outcome::ok);
  BOOST_TEST(got->http_status == 200u);
  BOOST_TEST(body.find("\"patroni\": {\"version\": \"3.0.2\"}") != std::string::npos, body);
  BOOST_REQUIRE(srv.conns.size() == 1u);
  BOOST_TEST(srv.conns[0]->request.rfind("GET /patroni HTTP/1.1\r\n", 0) == 0u, srv.conns[0]->request);
  expect_clean_closes(io, srv);

  // Another status: reported as a layer-7 answer, body still handed over.
  srv.mode = Mode::unavailable;
  got.reset();
  health::fetch_once(io, rule, {"127.0.0.1", srv.port()}, asio::ip::make_address("127.0.0.1"), "/patroni", ms{2000},
                     [&](const health::CheckResult& r, const std::string& b) {
                       got = r;
                       body = b;
                     });
  BOOST_REQUIRE(run_until(io, [&] { return got.has_value(); }));
  BOOST_TEST(got->outcome == Outcome::l7_status);
  BOOST_TEST(got->http_status == 503u);
  expect_clean_closes(io, srv);

  // Nobody listening: layer 4.
  got.reset();
  health::fetch_once(io, rule, {"127.0.0.1", refused_port(io)}, asio::ip::make_address("127.0.0.1"), "/patroni", ms{2000},
                     [&](const health::CheckResult& r, const std::string&) { got = r; });
  BOOST_REQUIRE(run_until(io, [&] { return got.has_value(); }));
  BOOST_TEST(got->outcome == Outcome::l4_refused);
}

BOOST_AUTO_TEST_CASE(fetch_once_cancel_reports_nothing_and_closes_cleanly) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::silent;
  auto rule = fast_rule();
  bool called = false;
  auto cancel = health::fetch_once(io, rule, {"127.0.0.1", srv.port()}, asio::ip::make_address("127.0.0.1"), "/patroni", ms{5000},
                                   [&](const health::CheckResult&, const std::string&) { called = true; });
  BOOST_REQUIRE(run_until(io, [&] { return !srv.conns.empty() && srv.conns[0]->request_complete; }));
  cancel();
  BOOST_REQUIRE(run_until(io, [&] { return srv.all_ended(); }, ms{1000}));
  BOOST_TEST(std::string(end_name(srv.conns[0]->end)) == "eof");
  run_for(io, ms{100});
  BOOST_TEST(!called);
  cancel();  // twice, or after the end: nothing
}

// After `done`, the cancel function ends the wait for a server that keeps
// the connection open (the daemon calls it at stop); before, it did
// nothing then and the daemon's exit waited for the timeout.
BOOST_AUTO_TEST_CASE(fetch_once_cancel_after_done_ends_the_wait_for_the_close) {
  asio::io_context io;
  Server srv(io);
  srv.mode = Mode::keep_open;
  auto rule = fast_rule();
  bool called = false;
  auto cancel = health::fetch_once(io, rule, {"127.0.0.1", srv.port()}, asio::ip::make_address("127.0.0.1"),
                                   "/patroni", ms{5000},
                                   [&](const health::CheckResult& r, const std::string&) {
                                     called = true;
                                     BOOST_TEST(r.outcome == Outcome::ok);
                                   });
  BOOST_REQUIRE(run_until(io, [&] { return called; }));
  run_for(io, ms{50});
  BOOST_REQUIRE(!srv.all_ended());
  cancel();
  BOOST_REQUIRE(run_until(io, [&] { return srv.all_ended(); }, ms{1000}));
  BOOST_TEST(std::string(end_name(srv.conns.at(0)->end)) == "eof");
}
