#include "daemon/admin.h"

#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <array>
#include <random>
#include <cerrno>
#include <cstring>

#include "cfg/names.h"
#include "metrics/prometheus.h"
#include "daemon/daemon.h"
#include "daemon/logging.h"
#include "daemon/realtime.h"
#include "proxy/socket_options.h"
#include "status_page.h"
#include "vrrp/service.h"
#include "version.h"

namespace daemon_ {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

bool resource_error(const boost::system::error_code& ec) {
  int v = ec.value();
  return ec.category() == boost::system::system_category() &&
         (v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM);
}

// Closes at once with a reset: a refused, evicted or timed-out client gets
// no graceful FIN and leaves no TIME_WAIT entry behind on our side.
void abort_socket(tcp::socket& s) {
  boost::system::error_code ignored;
  s.set_option(asio::socket_base::linger(true, 0), ignored);
  s.close(ignored);
}

// A fresh Content-Security-Policy nonce for each page (CSP Level 3 §6.7.2.3:
// base64 of at least 128 random bits).
std::string make_nonce() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 22; ++i) out += kAlphabet[rd() % 64];
  return out;
}

}  // namespace

// One client of the admin endpoint: reads one request (size and time bounded
// while reading), answers it and closes (no keep-alive: each request costs
// one slot for as short as possible).
class AdminConnection : public std::enable_shared_from_this<AdminConnection> {
 public:
  AdminConnection(AdminServer& server, uint64_t id, tcp::socket s)
      : server_(server), id_(id), stream_(std::move(s)), buf_(server.limits().max_request_bytes) {
    parser_.header_limit(static_cast<std::uint32_t>(server.limits().max_request_bytes));
    parser_.body_limit(0);
  }

  void start() {
    stream_.expires_after(server_.limits().read_timeout);
    http::async_read(stream_, buf_, parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->on_read(ec);
    });
  }

  int native_handle() { return stream_.socket().native_handle(); }

  // Evicted to make room (counted as `why`), or the daemon stops (nullptr:
  // not counted): pending handlers end with operation_aborted and the
  // connection leaves.
  void close(uint64_t AdminCounters::*why) {
    closed_ = true;
    if (lingering_) {
      // It had its answer (counted as such), maybe not all of it read yet:
      // a plain close lets the kernel finish handing it over.
      beast::error_code ignored;
      stream_.socket().close(ignored);
      return;
    }
    outcome_ = why;
    abort_socket(stream_.socket());
  }

 private:
  void on_read(beast::error_code ec) {
    if (closed_) return finish();
    if (ec == beast::error::timeout) {
      outcome_ = &AdminCounters::timeouts;
      abort_socket(stream_.socket());
      return finish();
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      outcome_ = &AdminCounters::too_large;
      return reply_error(http::status::request_header_fields_too_large, "request too large\n");
    }
    if (ec == http::error::body_limit || ec == http::error::unexpected_body) {
      outcome_ = &AdminCounters::bad_requests;
      return reply_error(http::status::bad_request, "no request body is accepted\n");
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return finish();
    if (ec && ec.category() == http::make_error_code(http::error::bad_version).category()) {
      outcome_ = &AdminCounters::bad_requests;
      return reply_error(http::status::bad_request, "not an HTTP/1.x request\n");
    }
    if (ec) return finish();  // the client went away
    server_.answering(id_);
    respond(parser_.get());
  }

  void reply_error(http::status status, const char* text) {
    server_.answering(id_);
    res_.version(11);
    res_.result(status);
    res_.set(http::field::content_type, "text/plain");
    res_.body() = text;
    write();
  }

  void respond(const http::request<http::empty_body>& req) {
    res_.version(req.version());
    std::string_view target = req.target();
    // The absolute form ("GET http://host:8405/status"), which a server must
    // accept (RFC 9112 §3.2.2): what counts is its path.
    for (std::string_view scheme : {"http://", "https://"})
      if (target.size() > scheme.size() && beast::iequals(target.substr(0, scheme.size()), scheme)) {
        auto slash = target.find('/', scheme.size());
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      }
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    res_.set(http::field::cache_control, "no-store");
    if (req.version() >= 11 && req.count(http::field::host) != 1) {
      // RFC 9112 §3.2: MUST answer 400 to an HTTP/1.1 request with no Host
      // or more than one.
      res_.result(http::status::bad_request);
      res_.set(http::field::content_type, "text/plain");
      res_.body() = "an HTTP/1.1 request needs one Host header\n";
    } else if (!token_authorizes(req[http::field::authorization], server_.token())) {
      outcome_ = &AdminCounters::unauthorized;
      res_.result(http::status::unauthorized);
      // Basic lets a browser ask for the token (any user name, the token as
      // password) and send it again with the status page's own requests.
      res_.set(http::field::www_authenticate, "Basic realm=\"vipproxy admin\", charset=\"UTF-8\"");
      res_.set(http::field::content_type, "text/plain");
      res_.body() =
          "token required: 'Authorization: Bearer TOKEN', or HTTP Basic with any user and the token as "
          "password\n";
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res_.result(http::status::method_not_allowed);
      res_.set(http::field::allow, "GET, HEAD");
      res_.set(http::field::content_type, "text/plain");
      res_.body() = "GET only\n";
    } else if (target == "/status") {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "application/json");
      res_.body() = server_.status_json();
    } else if (target == "/metrics") {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "text/plain; version=0.0.4");
      res_.body() = server_.metrics_text();
    } else if (target == "/") {
      std::string nonce = make_nonce();
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "text/html; charset=utf-8");
      // Everything is in the page; it may only talk back to us (fetch of
      // /status), and only its own script and style run.
      res_.set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-" + nonce +
                                              "'; style-src 'nonce-" + nonce +
                                              "'; connect-src 'self'; img-src data:; base-uri 'none'; "
                                              "form-action 'none'; frame-ancestors 'none'");
      res_.set("X-Content-Type-Options", "nosniff");
      res_.set("Referrer-Policy", "no-referrer");
      res_.body() = server_.status_page(nonce);
    } else {
      res_.result(http::status::not_found);
      res_.set(http::field::content_type, "text/plain");
      res_.body() = "try /, /status or /metrics\n";
    }
    if (res_.result() != http::status::unauthorized)
      outcome_ = res_.result_int() / 100 == 2 ? &AdminCounters::served : &AdminCounters::bad_requests;
    if (req.method() == http::verb::head) {
      size_t n = res_.body().size();
      res_.body().clear();
      res_.content_length(n);
    }
    write();
  }

  void write() {
    res_.set(http::field::server, "vipproxy/" VIPPROXY_VERSION);
    res_.keep_alive(false);
    if (!res_.has_content_length()) res_.prepare_payload();
    stream_.expires_after(server_.limits().write_timeout);
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec == beast::error::timeout) {
        self->outcome_ = &AdminCounters::timeouts;
        abort_socket(self->stream_.socket());
      } else if (ec) {
        if (!self->closed_) self->outcome_ = &AdminCounters::client_closed;
      } else {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return self->linger();
      }
      self->finish();
    });
  }

  // The reply is with the kernel and our FIN follows it. Closing now while
  // the client's bytes sit unread in the socket (a pipelined request, the
  // rest of a refused body or of an oversized header) makes Linux reset the
  // connection and drop what of the reply it has not sent yet: a client
  // that pipelined a second request got a /metrics cut at the size of its
  // receive window, then ECONNRESET. So read and drop until the client
  // closes (it does once it has the reply: Connection: close), at most
  // linger_timeout and linger_bytes (RFC 9112 §9.6; Apache's and nginx's
  // lingering close). Admission closes a lingering connection first when a
  // newcomer needs its slot.
  void linger() {
    lingering_ = true;
    server_.lingering(id_);
    stream_.expires_after(server_.limits().linger_timeout);
    read_and_drop();
  }

  void read_and_drop() {
    stream_.async_read_some(asio::buffer(drop_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->dropped_ += n;
      if (!ec && !self->closed_ && self->dropped_ < self->server_.limits().linger_bytes) return self->read_and_drop();
      // The client closed (the usual end), or it kept us waiting (the stream
      // closed the socket at the deadline) or sending. A plain close: with
      // nothing unread the kernel still hands a slow reader the rest.
      self->finish();
    });
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    if (outcome_) ++(server_.counters().*outcome_);
    server_.left(id_);  // may drop the server's reference: handlers hold their own
  }

  AdminServer& server_;
  uint64_t id_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> res_;
  bool closed_ = false;
  bool finished_ = false;
  bool lingering_ = false;
  std::array<char, 4096> drop_;
  size_t dropped_ = 0;
  // How it ended (one counter per connection); until something else is
  // known, the client went away.
  uint64_t AdminCounters::*outcome_ = &AdminCounters::client_closed;
};

AdminServer::AdminServer(asio::io_context& io, const Daemon& d, AdminLimits limits)
    : io_(io), daemon_(d), limits_(limits), acceptor_(io), pause_(io), admission_(limits.max_connections) {}

AdminServer::~AdminServer() = default;

const std::string& AdminServer::token() const { return daemon_.config().admin.token; }

void AdminServer::listen() {
  const auto& a = daemon_.config().admin;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(a.listen.host, ec);
  if (ec) throw std::runtime_error("admin.listen: '" + a.listen.host + "' is not an IP address");
  tcp::endpoint ep(addr, a.listen.port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep, ec);
  if (ec)
    throw std::system_error(ec, "admin: cannot listen on " + a.listen.host + ":" + std::to_string(a.listen.port));
  acceptor_.listen();
  // A connection that has sent nothing yet stays with the kernel (HAProxy's
  // `defer-accept`, nginx's `deferred`). Without it a well-behaved client
  // that got its CPU a few ms after connect() was, for the endpoint, an idle
  // connection, and a flood that turns the slots over every few ms closed it
  // before its request arrived (test_admin_hostile_netns, 2026-12-02).
  // Linux hands an idle one over after one SYN-ACK retransmission (~1 s),
  // when the read deadline starts.
  const int defer = static_cast<int>(limits_.defer_accept.count());
  if (defer > 0 && ::setsockopt(acceptor_.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer) != 0)
    spdlog::warn("admin: TCP_DEFER_ACCEPT not set ({}): an idle connection takes a slot at once",
                 std::strerror(errno));
  if (!addr.is_loopback())
    spdlog::warn("admin endpoint listens on {} (not loopback){}", a.listen.host,
                 a.token.empty() ? " without a token" : "");
  accept();
}

void AdminServer::stop() {
  stopped_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  pause_.cancel();
  // A client must not hold the shutdown for its deadlines.
  for (auto& [id, c] : conns_) c->close(nullptr);
}

void AdminServer::left(uint64_t id) {
  admission_.left(id);
  conns_.erase(id);
}

void AdminServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || stopped_) return;
    if (ec) {
      ++counters_.accept_errors;
      if (resource_error(ec)) {
        // The pending connection stays in the backlog, so the listener stays
        // readable: retrying at once would spin the control thread (and
        // delay VRRP adverts) while nothing can change. Pause, like the
        // proxy's accept loop (proxy/worker.cpp).
        auto now = std::chrono::steady_clock::now();
        if (now - last_accept_error_log_ > std::chrono::seconds(5)) {
          last_accept_error_log_ = now;
          spdlog::error("admin: accept failed: {}; pausing accepts for {} ms", ec.message(),
                        limits_.accept_pause.count());
        }
        pause_.expires_after(limits_.accept_pause);
        pause_.async_wait([this](const boost::system::error_code& e) {
          if (!e && !stopped_) accept();
        });
        return;
      }
      accept();
      return;
    }
    admit(std::move(s));
    accept();
  });
}

void AdminServer::admit(tcp::socket s) {
  ++counters_.accepted;
  // Asio accepts without SOCK_CLOEXEC; no script may inherit an admin
  // connection (the spawner's close-above-2 covers the moment before this).
  proxy::set_cloexec(s.native_handle());
  uint64_t id = ++next_id_;
  auto d = admission_.arrive(id, [this](uint64_t waiter) {
    auto it = conns_.find(waiter);
    int n = 0;
    return it != conns_.end() && ::ioctl(it->second->native_handle(), FIONREAD, &n) == 0 && n > 0;
  });
  if (!d.admit) {
    ++counters_.refused;
    abort_socket(s);
    return;
  }
  if (d.evict) {
    if (auto it = conns_.find(*d.evict); it != conns_.end()) it->second->close(&AdminCounters::evicted);
  }
  auto c = std::make_shared<AdminConnection>(*this, id, std::move(s));
  conns_.emplace(id, c);
  c->start();
}

std::string AdminServer::status_json() const {
  json::object root;
  root["node"] = daemon_.config().node;
  root["version"] = VIPPROXY_VERSION;
  root["pipes_in_use"] = daemon_.pipes_in_use();
  root["kernel_path"] = {{"available", daemon_.kernel_path()}, {"why_not", daemon_.kernel_path_why_not()}};
  root["config"] = daemon_.config().source;
  root["stopping"] = daemon_.stopping();
  // How the control thread (VRRP adverts, checks, this endpoint) is scheduled
  // (vrrp_rt_priority, daemon/realtime.h).
  root["control_thread"] = {{"scheduling", realtime::describe()},
                            {"vrrp_rt_priority", daemon_.config().vrrp_rt_priority}};
  root["reloads"] = {{"applied", daemon_.reloads().applied}, {"failed", daemon_.reloads().failed}};
  // Worker threads whose event loop has stopped turning (daemon/worker_watch.h).
  json::array stuck;
  for (size_t i : daemon_.workers_stuck()) stuck.push_back(i);
  root["workers"] = {{"threads", daemon_.worker_count()}, {"stuck", std::move(stuck)}};
  json::array proxies;
  const auto& ps = daemon_.proxies();
  for (size_t pi = 0; pi < ps.size(); ++pi) {
    const auto& p = *ps[pi];
    json::object o;
    o["name"] = p.cfg.name;
    o["listen"] = p.cfg.listen.host + ":" + std::to_string(p.cfg.listen.port);
    o["balance"] = cfg::names::to_string(p.cfg.balance);
    size_t cur = p.current.load();
    o["current_backend"] = cur < p.backends.size() ? json::value(p.backends[cur]->cfg.name) : json::value(nullptr);
    o["sessions_current"] = p.stats->sessions_current.load();
    o["maxconn"] = p.cfg.maxconn;
    o["data_path"] = std::string(cfg::names::to_string(p.cfg.data_path));
    json::object counters;
#define VIPPROXY_COUNTER_JSON(counter, type, help) counters[#counter] = p.total(&proxy::ProxyCounters::counter);
    VIPPROXY_PROXY_COUNTERS(VIPPROXY_COUNTER_JSON)
#undef VIPPROXY_COUNTER_JSON
    o["counters"] = std::move(counters);
    json::array backends;
    for (size_t bi = 0; bi < p.backends.size(); ++bi) {
      const auto& b = *p.backends[bi];
      json::object bo;
      bo["name"] = b.cfg.name;
      bo["address"] = b.cfg.address.host + ":" + std::to_string(b.cfg.address.port);
      bo["eligible"] = b.eligible.load();
      bo["sessions"] = b.sessions.load();
      bo["sessions_total"] = b.sessions_total.load();
      bo["connect_errors"] = b.connect_errors.load();
      if (const auto* st = daemon_.check_status(pi, bi)) {
        json::object c;
        c["state"] = st->up ? "UP" : "DOWN";
        c["last_outcome"] = health::to_string(st->last.outcome);
        c["layer"] = health::layer(st->last);
        c["http_status"] = st->last.http_status;
        c["detail"] = st->last.detail;
        c["latency_ms"] = static_cast<double>(st->last.latency.count()) / 1000.0;
        c["checks"] = st->checks;
        c["failures"] = st->failures;
        c["malformed"] = st->malformed;
        c["transitions"] = st->transitions;
        bo["check"] = std::move(c);
      }
      // Only while this backend is one of several passing at once (`first`):
      // the timeline its Patroni reported, which new sessions follow.
      if (auto t = daemon_.overlap_timeline(pi, bi)) {
        json::object to;
        to["timeline"] = t->timeline ? json::value(*t->timeline) : json::value(nullptr);
        to["reading"] = t->reading;
        to["error"] = t->error;
        bo["overlap"] = std::move(to);
      }
      backends.push_back(std::move(bo));
    }
    o["backends"] = std::move(backends);
    proxies.push_back(std::move(o));
  }
  root["proxies"] = std::move(proxies);
  root["vrrp"] = daemon_.vrrp() ? daemon_.vrrp()->status() : json::array();
  json::object admin;
  admin["connections"] = admission_.open();
  admin["max_connections"] = limits_.max_connections;
  admin["accepted"] = counters_.accepted;
  admin["accept_errors"] = counters_.accept_errors;
#define VIPPROXY_ADMIN_JSON(name, help) admin[#name] = counters_.name;
  VIPPROXY_ADMIN_COUNTERS(VIPPROXY_ADMIN_JSON)
#undef VIPPROXY_ADMIN_JSON
  root["admin"] = std::move(admin);
  return json::serialize(root) + "\n";
}

std::string AdminServer::metrics_text() const {
  using metrics::Type;
  metrics::Writer w;
  const auto& ps = daemon_.proxies();
  auto proxy = [](const proxy::ProxyRuntime& p) { return metrics::Labels{{"proxy", p.cfg.name}}; };
#define VIPPROXY_COUNTER_PROM(counter, type, help)         \
  w.family("proxy_" #counter, Type::type, help);           \
  for (const auto& p : ps) w.sample(proxy(*p), p->total(&proxy::ProxyCounters::counter));
  VIPPROXY_PROXY_COUNTERS(VIPPROXY_COUNTER_PROM)
#undef VIPPROXY_COUNTER_PROM
  w.family("proxy_sessions_current", Type::gauge, "Sessions open now (including waiting for a backend)");
  for (const auto& p : ps) w.sample(proxy(*p), p->stats->sessions_current.load());

  struct BackendMetric {
    const char* name;
    Type type;
    const char* help;
    std::function<uint64_t(size_t, size_t)> get;
  };
  auto check = [&](size_t p, size_t b) { return daemon_.check_status(p, b); };
  const BackendMetric backend_metrics[] = {
      {"up", Type::gauge, "1 while the backend passes its check (eligible)",
       [&](size_t p, size_t b) -> uint64_t { return ps[p]->backends[b]->eligible.load() ? 1 : 0; }},
      {"sessions", Type::gauge, "Sessions open to the backend",
       [&](size_t p, size_t b) -> uint64_t { return ps[p]->backends[b]->sessions.load(); }},
      {"sessions_total", Type::counter, "Sessions established to the backend",
       [&](size_t p, size_t b) -> uint64_t { return ps[p]->backends[b]->sessions_total.load(); }},
      {"connect_errors", Type::counter, "Failed connection attempts to the backend",
       [&](size_t p, size_t b) -> uint64_t { return ps[p]->backends[b]->connect_errors.load(); }},
      {"checks", Type::counter, "Health checks completed",
       [&](size_t p, size_t b) -> uint64_t { auto* s = check(p, b); return s ? s->checks : 0; }},
      {"check_failures", Type::counter, "Health checks that failed",
       [&](size_t p, size_t b) -> uint64_t { auto* s = check(p, b); return s ? s->failures : 0; }},
      {"check_malformed", Type::counter, "Health check replies that were not valid HTTP (dropped)",
       [&](size_t p, size_t b) -> uint64_t { auto* s = check(p, b); return s ? s->malformed : 0; }},
      {"check_transitions", Type::counter, "UP/DOWN changes",
       [&](size_t p, size_t b) -> uint64_t { auto* s = check(p, b); return s ? s->transitions : 0; }},
      {"timeline", Type::gauge,
       "While several backends of a first proxy pass at once: the PostgreSQL timeline the backend's Patroni "
       "reports as a primary (0: none, not read, or not a primary's reply)",
       [&](size_t p, size_t b) -> uint64_t {
         auto t = daemon_.overlap_timeline(p, b);
         return t && t->timeline ? *t->timeline : 0;
       }},
  };
  for (const auto& m : backend_metrics) {
    w.family(std::string("backend_") + m.name, m.type, m.help);
    for (size_t p = 0; p < ps.size(); ++p)
      for (size_t b = 0; b < ps[p]->backends.size(); ++b)
        w.sample({{"proxy", ps[p]->cfg.name}, {"backend", ps[p]->backends[b]->cfg.name}}, m.get(p, b));
  }
  w.family("log_messages_dropped", Type::counter,
           "Log messages dropped because standard error did not take them (a stalled journal or reader)")
      .sample(logging::dropped());
  w.family("systemd_notifications_dropped", Type::counter,
           "systemd notifications not sent because its notify socket was full or gone (watchdog pings; state "
           "changes only past 32 waiting)")
      .sample(daemon_.notifications_dropped());
  w.family("workers_stuck", Type::gauge,
           "Worker threads whose event loop has not turned for a watch period (half of WatchdogSec, else 5 s): "
           "their clients hang")
      .sample(daemon_.workers_stuck().size());
  w.family("reloads", Type::counter, "SIGHUP reloads, by result (failed: the running configuration stayed)");
  w.sample({{"result", "applied"}}, daemon_.reloads().applied);
  w.sample({{"result", "failed"}}, daemon_.reloads().failed);
  w.family("admin_connections", Type::gauge, "Admin endpoint connections open now").sample(admission_.open());
  w.family("admin_accepted", Type::counter, "Admin endpoint connections accepted").sample(counters_.accepted);
  w.family("admin_accept_errors", Type::counter,
           "Failed accept() on the admin endpoint (e.g. EMFILE); accepting pauses briefly")
      .sample(counters_.accept_errors);
  w.family("admin_connections", Type::counter, "Admin endpoint connections by how they ended (one result each)");
#define VIPPROXY_ADMIN_PROM(name, help) w.sample({{"result", #name}}, counters_.name);
  VIPPROXY_ADMIN_COUNTERS(VIPPROXY_ADMIN_PROM)
#undef VIPPROXY_ADMIN_PROM
  if (const auto* v = daemon_.vrrp()) v->metrics(w);
  return w.text();
}

std::string AdminServer::status_page(const std::string& nonce) const {
  // The current /status rides in the page, so the first paint needs no
  // second request. In a <script> element only "</script" or "<!--" could
  // end or confuse it: '<' only occurs inside JSON strings, where \u003c
  // means the same.
  std::string initial;
  for (char c : status_json()) {
    if (c == '<') initial += "\\u003c";
    else initial += c;
  }
  std::string page = kStatusPage;
  auto put = [&page](std::string_view key, const std::string& value) {
    for (size_t at = page.find(key); at != std::string::npos; at = page.find(key, at + value.size()))
      page.replace(at, key.size(), value);
  };
  put("{{NONCE}}", nonce);
  put("{{INITIAL_STATUS}}", initial);
  return page;
}

}  // namespace daemon_
