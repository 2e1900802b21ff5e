#include "daemon/admin.h"

#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "daemon/daemon.h"
#include "vrrp/service.h"
#include "version.h"

namespace daemon_ {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

const char* balance_name(cfg::Balance b) {
  switch (b) {
    case cfg::Balance::first: return "first";
    case cfg::Balance::roundrobin: return "roundrobin";
    case cfg::Balance::leastconn: return "leastconn";
  }
  return "?";
}

// Prometheus label values escape backslash, quote and newline.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') { out += "\\n"; continue; }
    out += c;
  }
  return out;
}

class AdminConnection : public std::enable_shared_from_this<AdminConnection> {
 public:
  AdminConnection(tcp::socket s, const AdminServer& server, const cfg::Admin& cfg)
      : stream_(std::move(s)), server_(server), cfg_(cfg) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buf_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      self->respond();
    });
  }

 private:
  void respond() {
    res_.version(req_.version());
    res_.set(http::field::server, "vipproxy/" VIPPROXY_VERSION);
    res_.keep_alive(false);
    std::string_view target = req_.target();
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    bool authorized = cfg_.token.empty() ||
                      req_[http::field::authorization] == "Bearer " + cfg_.token;
    if (!authorized) {
      res_.result(http::status::unauthorized);
      res_.set(http::field::content_type, "text/plain");
      res_.body() = "token required\n";
    } else if (req_.method() != http::verb::get && req_.method() != http::verb::head) {
      res_.result(http::status::method_not_allowed);
      res_.body() = "GET only\n";
    } else if (target == "/status") {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "application/json");
      res_.body() = server_.status_json();
    } else if (target == "/metrics") {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "text/plain; version=0.0.4");
      res_.body() = server_.metrics_text();
    } else {
      res_.result(http::status::not_found);
      res_.set(http::field::content_type, "text/plain");
      res_.body() = "try /status or /metrics\n";
    }
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  const AdminServer& server_;
  const cfg::Admin& cfg_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

}  // namespace

AdminServer::AdminServer(asio::io_context& io, const Daemon& d) : io_(io), daemon_(d), acceptor_(io) {}

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
  if (!addr.is_loopback())
    spdlog::warn("admin endpoint listens on {} (not loopback){}", a.listen.host,
                 a.token.empty() ? " without a token" : "");
  accept();
}

void AdminServer::stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void AdminServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<AdminConnection>(std::move(s), *this, daemon_.config().admin)->start();
    accept();
  });
}

std::string AdminServer::status_json() const {
  json::object root;
  root["node"] = daemon_.config().node;
  root["version"] = VIPPROXY_VERSION;
  root["pipes_in_use"] = daemon_.pipes_in_use();
  root["config"] = daemon_.config().source;
  root["reloads"] = {{"applied", daemon_.reloads().applied}, {"failed", daemon_.reloads().failed}};
  json::array proxies;
  const auto& ps = daemon_.proxies();
  for (size_t pi = 0; pi < ps.size(); ++pi) {
    const auto& p = *ps[pi];
    json::object o;
    o["name"] = p.cfg.name;
    o["listen"] = p.cfg.listen.host + ":" + std::to_string(p.cfg.listen.port);
    o["balance"] = balance_name(p.cfg.balance);
    size_t cur = p.current.load();
    o["current_backend"] = cur < p.backends.size() ? json::value(p.backends[cur]->cfg.name) : json::value(nullptr);
    o["sessions_current"] = p.stats->sessions_current.load();
    o["maxconn"] = p.cfg.maxconn;
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
        c["layer"] = health::is_layer4(st->last.outcome) ? "L4" : "L7";
        c["http_status"] = st->last.http_status;
        c["detail"] = st->last.detail;
        c["latency_ms"] = static_cast<double>(st->last.latency.count()) / 1000.0;
        c["checks"] = st->checks;
        c["failures"] = st->failures;
        c["malformed"] = st->malformed;
        c["transitions"] = st->transitions;
        bo["check"] = std::move(c);
      }
      backends.push_back(std::move(bo));
    }
    o["backends"] = std::move(backends);
    proxies.push_back(std::move(o));
  }
  root["proxies"] = std::move(proxies);
  root["vrrp"] = daemon_.vrrp() ? daemon_.vrrp()->status() : json::array();
  return json::serialize(root) + "\n";
}

std::string AdminServer::metrics_text() const {
  std::string out;
  const auto& ps = daemon_.proxies();
  auto line = [&](const std::string& s) { out += s; out += '\n'; };
#define VIPPROXY_COUNTER_PROM(counter, type, help)                                   \
  line("# HELP vipproxy_proxy_" #counter " " help);                                  \
  line("# TYPE vipproxy_proxy_" #counter " " #type);                                 \
  for (const auto& p : ps)                                                        \
    line("vipproxy_proxy_" #counter "{proxy=\"" + label(p->cfg.name) + "\"} " +      \
         std::to_string(p->total(&proxy::ProxyCounters::counter)));
  VIPPROXY_PROXY_COUNTERS(VIPPROXY_COUNTER_PROM)
#undef VIPPROXY_COUNTER_PROM
  line("# HELP vipproxy_proxy_sessions_current Sessions open now (including waiting for a backend)");
  line("# TYPE vipproxy_proxy_sessions_current gauge");
  for (const auto& p : ps)
    line("vipproxy_proxy_sessions_current{proxy=\"" + label(p->cfg.name) + "\"} " +
         std::to_string(p->stats->sessions_current.load()));

  struct BackendMetric {
    const char* name;
    const char* type;
    const char* help;
    std::function<uint64_t(size_t, size_t)> get;
  };
  const BackendMetric metrics[] = {
      {"up", "gauge", "1 while the backend passes its check (eligible)",
       [&](size_t p, size_t b) -> uint64_t { return ps[p]->backends[b]->eligible.load() ? 1 : 0; }},
      {"sessions", "gauge", "Sessions open to the backend",
       [&](size_t p, size_t b) -> uint64_t { return ps[p]->backends[b]->sessions.load(); }},
      {"sessions_total", "counter", "Sessions established to the backend",
       [&](size_t p, size_t b) -> uint64_t { return ps[p]->backends[b]->sessions_total.load(); }},
      {"connect_errors_total", "counter", "Failed connection attempts to the backend",
       [&](size_t p, size_t b) -> uint64_t { return ps[p]->backends[b]->connect_errors.load(); }},
      {"checks_total", "counter", "Health checks completed",
       [&](size_t p, size_t b) -> uint64_t { auto* s = daemon_.check_status(p, b); return s ? s->checks : 0; }},
      {"check_failures_total", "counter", "Health checks that failed",
       [&](size_t p, size_t b) -> uint64_t { auto* s = daemon_.check_status(p, b); return s ? s->failures : 0; }},
      {"check_malformed_total", "counter", "Health check replies that were not valid HTTP (dropped)",
       [&](size_t p, size_t b) -> uint64_t { auto* s = daemon_.check_status(p, b); return s ? s->malformed : 0; }},
      {"check_transitions_total", "counter", "UP/DOWN changes",
       [&](size_t p, size_t b) -> uint64_t { auto* s = daemon_.check_status(p, b); return s ? s->transitions : 0; }},
  };
  for (const auto& m : metrics) {
    line(std::string("# HELP vipproxy_backend_") + m.name + " " + m.help);
    line(std::string("# TYPE vipproxy_backend_") + m.name + " " + m.type);
    for (size_t p = 0; p < ps.size(); ++p)
      for (size_t b = 0; b < ps[p]->backends.size(); ++b)
        line(std::string("vipproxy_backend_") + m.name + "{proxy=\"" + label(ps[p]->cfg.name) +
             "\",backend=\"" + label(ps[p]->backends[b]->cfg.name) + "\"} " + std::to_string(m.get(p, b)));
  }
  line("# HELP vipproxy_reloads_total SIGHUP reloads, by result (failed: the running configuration stayed)");
  line("# TYPE vipproxy_reloads_total counter");
  line("vipproxy_reloads_total{result=\"applied\"} " + std::to_string(daemon_.reloads().applied));
  line("vipproxy_reloads_total{result=\"failed\"} " + std::to_string(daemon_.reloads().failed));
  if (const auto* v = daemon_.vrrp()) out += v->metrics();
  return out;
}

}  // namespace daemon_
