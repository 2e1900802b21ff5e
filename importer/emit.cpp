#include "importer/emit.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <tuple>
#include <map>
#include <set>
#include <sstream>

#include "cfg/load.h"
#include "cfg/syntax.h"

namespace importer {

namespace {

using namespace std::chrono_literals;
namespace hp = haproxy;
namespace ka = keepalived;
using cfg::syntax::is_ipv4;
using cfg::syntax::is_ipv6;

// HAProxy's check defaults (doc/configuration.txt, "inter", "rise", "fall"),
// written out explicitly so the result does not depend on either tool's.
constexpr Duration kHaproxyInter = 2000ms;
constexpr unsigned kHaproxyRise = 2;
constexpr unsigned kHaproxyFall = 3;
// keepalived's vrrp_script default interval (keepalived.conf(5)).
constexpr Duration kKeepalivedScriptInterval = 1000ms;

bool contains_ci(std::string_view hay, std::string_view needle) {
  return cfg::syntax::lower(hay).find(cfg::syntax::lower(needle)) != std::string::npos;
}

// A name the loader accepts: letters, digits, - _ . @ : (1-64 characters).
std::string safe_name(std::string s) {
  for (char& c : s)
    if (!cfg::syntax::is_name(std::string_view(&c, 1))) c = '_';
  if (s.empty()) s = "unnamed";
  if (s.size() > 64) s.resize(64);
  return s;
}

class Converter {
 public:
  Converter(const Options& o) : opts_(o) {}

  void haproxy(const hp::Config& h);
  void keepalived(const ka::Config& k);
  Result finish();

 private:
  void note(const std::string& file, int line, std::string text) { notes_.push_back({file, line, std::move(text)}); }
  void hnote(int line, std::string text) { note(opts_.haproxy_file, line, std::move(text)); }
  void knote(int line, std::string text) { note(opts_.keepalived_file, line, std::move(text)); }
  void not_translated(const std::string& file, int line, const std::string& what, const std::string& why) {
    note(file, line, "'" + what + "' not translated: " + why);
  }

  // haproxy
  void haproxy_unhandled(const std::vector<Unhandled>& list, bool global);
  std::string haproxy_reason(const std::string& text, bool global) const;
  void proxy(const hp::Section& front, const hp::Section& back, const hp::Config& h);
  bool listen_endpoint(const hp::Bind& b, cfg::Endpoint& out);
  bool server_endpoint(const hp::Server& s, uint16_t listen_port, cfg::Endpoint& out);
  cfg::Check check(const hp::Section& back, const std::vector<hp::Server>& servers);

  // keepalived
  std::string keepalived_reason(const std::string& text) const;
  void instance(const ka::Instance& in, const ka::Config& k, std::set<std::string>& used_scripts);

  Options opts_;
  cfg::Config out_;
  std::vector<Note> notes_;
};

// ---------------------------------------------------------------- haproxy

std::string Converter::haproxy_reason(const std::string& text, bool global) const {
  auto starts = [&](std::string_view p) { return text.rfind(p, 0) == 0; };
  if (starts("stats"))
    return "vipproxy's admin endpoint (admin.listen, default 127.0.0.1:8405) serves GET /status (JSON) and "
           "GET /metrics (Prometheus)";
  if (starts("log") || starts("option tcplog") || starts("option httplog") || starts("option dontlognull") ||
      starts("option log"))
    return "vipproxy logs to standard error (the journal under systemd)";
  if (starts("option tcpka") || starts("option clitcpka") || starts("option srvtcpka"))
    return "TCP keepalive is on by default on both sides (keepalive)";
  if (starts("option redispatch") || starts("retries"))
    return "vipproxy has no retry/redispatch setting; a client whose backend fails reconnects";
  if (starts("errorfile") || starts("option http") || starts("option forwardfor") || starts("http-"))
    return "HTTP mode only; vipproxy is a TCP proxy";
  if (starts("timeout"))
    return "no equivalent for this timeout in vipproxy";
  if (global)
    return "global process setting; vipproxy has none (systemd runs it with its own user, limits and logging)";
  return "no equivalent in vipproxy";
}

void Converter::haproxy_unhandled(const std::vector<Unhandled>& list, bool global) {
  for (const auto& u : list)
    not_translated(opts_.haproxy_file, u.line, u.text, u.reason.empty() ? haproxy_reason(u.text, global) : u.reason);
}

bool Converter::listen_endpoint(const hp::Bind& b, cfg::Endpoint& out) {
  std::string a = b.address;
  for (std::string_view p : {"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"})
    if (a.rfind(p, 0) == 0) a = a.substr(p.size());
  auto colon = a.rfind(':');
  if (a.empty() || a[0] == '/' || a.find('@') != std::string::npos || colon == std::string::npos) {
    not_translated(opts_.haproxy_file, b.line, "bind " + b.address,
                   "vipproxy listens on TCP addresses (host:port) only");
    return false;
  }
  std::string host = a.substr(0, colon), port = a.substr(colon + 1);
  auto p = cfg::syntax::parse_integer(port, false);
  if (!p || *p < 1 || *p > 65535) {
    not_translated(opts_.haproxy_file, b.line, "bind " + b.address,
                   "expected one port (port ranges have no equivalent)");
    return false;
  }
  if (host.empty() || host == "*") host = "0.0.0.0";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  out.host = host;
  out.port = static_cast<uint16_t>(*p);
  return true;
}

bool Converter::server_endpoint(const hp::Server& s, uint16_t listen_port, cfg::Endpoint& out) {
  std::string a = s.address;
  for (std::string_view p : {"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"})
    if (a.rfind(p, 0) == 0) a = a.substr(p.size());
  std::string host = a, port;
  if (!a.empty() && a[0] == '[') {
    auto close = a.find(']');
    host = a.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    if (close != std::string::npos && close + 1 < a.size() && a[close + 1] == ':') port = a.substr(close + 2);
  } else if (auto colon = a.rfind(':'); colon != std::string::npos) {
    // A bare IPv6 address has colons of its own: HAProxy reads the part after
    // the last colon as the port only when the rest is an address.
    if (is_ipv6(a) && !is_ipv6(a.substr(0, colon))) {
      host = a;
    } else {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
    }
  }
  if (!(is_ipv4(host) || is_ipv6(host) || cfg::syntax::is_hostname(host))) {
    not_translated(opts_.haproxy_file, s.line, "server " + s.name + " " + s.address,
                   "vipproxy needs an IP address or a DNS name and a port");
    return false;
  }
  out.host = host;
  if (port.empty()) {
    out.port = listen_port;
    hnote(s.line, "server " + s.name + " has no port: HAProxy uses the port the client connected to, written as " +
                      std::to_string(listen_port));
    return true;
  }
  auto p = cfg::syntax::parse_integer(port, false);
  if (!p || *p < 1 || *p > 65535) {
    not_translated(opts_.haproxy_file, s.line, "server " + s.name + " " + s.address,
                   "expected a fixed port (port offsets like +1 have no equivalent)");
    return false;
  }
  out.port = static_cast<uint16_t>(*p);
  return true;
}

cfg::Check Converter::check(const hp::Section& back, const std::vector<hp::Server>& servers) {
  cfg::Check c;
  const auto& opt = back.check_option;
  if (opt && opt->value == "httpchk") {
    c.type = cfg::CheckType::http;
    c.method = back.http_method ? back.http_method->value : "OPTIONS";  // HAProxy's default method
    c.path = back.http_uri ? back.http_uri->value : "/";
    if (!cfg::syntax::is_http_token(c.method)) {
      not_translated(opts_.haproxy_file, back.http_method->line, "method " + c.method,
                     "not an HTTP method; OPTIONS is written");
      c.method = "OPTIONS";
    }
    if (c.path.empty() || c.path[0] != '/' || c.path.find_first_of(" \t") != std::string::npos) {
      not_translated(opts_.haproxy_file, back.http_uri->line, "uri " + c.path,
                     "vipproxy needs a path starting with '/'; / is written");
      c.path = "/";
    }
    if (back.http_version && back.http_version->value != "HTTP/1.0" && back.http_version->value != "HTTP/1.1")
      not_translated(opts_.haproxy_file, back.http_version->line, back.http_version->value,
                     "vipproxy sends its own HTTP/1.1 request line and Host header");
    if (back.expect_status) {
      c.expect_status = back.expect_status->value;
    } else {
      c.expect_status = 200;
      hnote(opt->line, "no 'http-check expect status': HAProxy accepts any 2xx or 3xx reply; vipproxy expects one "
                       "status, expect_status: 200 is written");
    }
  } else {
    c.type = cfg::CheckType::tcp;
    if (opt && opt->value != "tcp-check")
      not_translated(opts_.haproxy_file, opt->line, "option " + opt->value,
                     "vipproxy checks with HTTP (Patroni's REST API) or a TCP connect; a TCP connect check is written");
    if (back.expect_status)
      not_translated(opts_.haproxy_file, back.expect_status->line,
                     "http-check expect status " + std::to_string(back.expect_status->value),
                     "there is no 'option httpchk' in effect");
  }

  // One check schedule per proxy: the first server's, as HAProxy resolved it
  // (default-server included); servers that differ are reported.
  const hp::ServerOptions& ref = servers.front().options;
  c.interval = ref.inter ? ref.inter->value : kHaproxyInter;
  c.rise = ref.rise ? std::max(1u, std::min(ref.rise->value, 1000u)) : kHaproxyRise;
  c.fall = ref.fall ? std::max(1u, std::min(ref.fall->value, 1000u)) : kHaproxyFall;
  if (c.interval < 1ms) c.interval = 1ms;
  if (ref.fastinter) {
    c.fast_interval = std::max(Duration{1}, ref.fastinter->value);
    if (c.fast_interval > c.interval) {
      hnote(ref.fastinter->line, "'fastinter' longer than 'inter': fast_interval written as " +
                                     duration_text(c.interval) + " (vipproxy's fast interval only speeds checks up)");
      c.fast_interval = c.interval;
    }
  } else {
    c.fast_interval = std::min(Duration{500}, c.interval);
  }
  if (!ref.inter && !ref.rise && !ref.fall)
    hnote(servers.front().line, "no inter/rise/fall: HAProxy's defaults are written explicitly (interval: 2s, "
                                "rise: 2, fall: 3)");
  for (const auto& s : servers) {
    const auto& o = s.options;
    auto differs = [&](const char* what, std::string mine, std::string used) {
      if (mine != used)
        hnote(s.line, std::string("server ") + s.name + ": '" + what + " " + mine +
                          "' not translated: vipproxy checks every backend of a proxy on one schedule; " + what + " " +
                          used + " (from server " + servers.front().name + ") is used");
    };
    differs("inter", duration_text(o.inter ? o.inter->value : kHaproxyInter), duration_text(c.interval));
    differs("rise", std::to_string(o.rise ? o.rise->value : kHaproxyRise), std::to_string(c.rise));
    differs("fall", std::to_string(o.fall ? o.fall->value : kHaproxyFall), std::to_string(c.fall));
    if (o.downinter)
      not_translated(opts_.haproxy_file, o.downinter->line, "downinter " + duration_text(o.downinter->value),
                     "a down backend is checked every interval (fast_interval while it is changing state)");
  }

  if (auto t = back.timeouts.find("check"); t != back.timeouts.end()) {
    c.timeout = std::max(Duration{1}, t->second.value);
  } else {
    c.timeout = 1000ms;
    hnote(back.line, "no 'timeout check' in backend " + back.name +
                         ": check.timeout 1s is written (HAProxy would wait up to 'timeout connect' to connect, then "
                         "up to inter for the reply)");
  }

  // Check port: one for the proxy when every server says the same, else per backend.
  std::set<unsigned> ports;
  bool all_have_port = true;
  for (const auto& s : servers) {
    if (s.options.port) ports.insert(s.options.port->value);
    else all_have_port = false;
  }
  if (all_have_port && ports.size() == 1 && *ports.begin() > 0) c.port = static_cast<uint16_t>(*ports.begin());

  // TLS for the check.
  for (const auto& s : servers) {
    const auto& o = s.options;
    bool s_tls = (o.check_ssl && o.check_ssl->value) || (o.ssl && o.ssl->value && !(o.check_ssl && !o.check_ssl->value));
    if (o.ssl && o.ssl->value)
      not_translated(opts_.haproxy_file, o.ssl->line, "ssl",
                     "vipproxy forwards the client's bytes as they are (PostgreSQL negotiates TLS itself); only the "
                     "check uses TLS");
    if (s_tls) {
      c.tls.enabled = true;
      if (o.verify && o.verify->value == "none") c.tls.verify = false;
      if (o.ca_file) c.tls.ca_file = o.ca_file->value;
      const auto& sni = o.check_sni ? o.check_sni : o.verifyhost;
      if (sni && cfg::syntax::is_hostname(sni->value)) c.tls.server_name = sni->value;
    } else {
      if (o.verify)
        hnote(o.verify->line, "'verify " + o.verify->value + "' ignored: it applies to TLS (check-ssl/ssl) and server " +
                                  s.name + " is checked in plain " +
                                  (c.type == cfg::CheckType::http ? "HTTP" : "TCP") + "; nothing to translate");
      if (o.ca_file) not_translated(opts_.haproxy_file, o.ca_file->line, "ca-file " + o.ca_file->value, "no TLS check");
    }
  }
  return c;
}

void Converter::proxy(const hp::Section& front, const hp::Section& back, const hp::Config& h) {
  const std::string& file = opts_.haproxy_file;
  std::string title = front.keyword + " " + front.name;
  cfg::Proxy p;
  // postgres_frontend -> postgres: the name users will see in status and in track.proxies.
  std::string name = front.name;
  for (std::string_view suffix : {"_frontend", "-frontend"})
    if (name.size() > suffix.size() && name.ends_with(suffix)) name.resize(name.size() - suffix.size());
  p.name = safe_name(name);
  if (p.name != name) hnote(front.line, "proxy name '" + name + "' written as '" + p.name + "' (letters, digits, - _ . @ : only)");
  for (const auto& other : out_.proxies)
    if (other.name == p.name) p.name = safe_name(front.name);

  if (front.binds.empty()) {
    not_translated(file, front.line, title, "it has no 'bind'");
    return;
  }
  if (!listen_endpoint(front.binds.front(), p.listen)) return;
  for (std::size_t i = 0; i < front.binds.size(); ++i) {
    const auto& b = front.binds[i];
    if (i > 0)
      not_translated(file, b.line, "bind " + b.address,
                     "vipproxy listens on one address per proxy; copy proxy " + p.name + " with this listen address");
    for (const auto& e : b.extra)
      not_translated(file, b.line, e, "vipproxy listens on one address per proxy; copy proxy " + p.name);
    std::string opts;
    for (const auto& o : b.options) opts += (opts.empty() ? "" : " ") + o;
    if (!opts.empty()) not_translated(file, b.line, opts, "bind options have no equivalent");
  }

  if (back.servers.empty()) {
    not_translated(file, back.line, back.keyword + " " + back.name, "it has no 'server' lines");
    return;
  }
  // HAProxy uses backup servers only when no other is up; vipproxy has no
  // such class, but listing them last has the same effect with `first`.
  std::vector<hp::Server> servers;
  for (const auto& s : back.servers)
    if (!(s.options.backup && s.options.backup->value)) servers.push_back(s);
  for (const auto& s : back.servers)
    if (s.options.backup && s.options.backup->value) {
      servers.push_back(s);
      not_translated(file, s.options.backup->line, "backup",
                     "vipproxy has no backup servers; " + s.name + " is listed last, so with balance first it is "
                     "used only when the others are not eligible");
    }

  p.check = check(back, servers);
  std::set<std::string> names;
  for (const auto& s : servers) {
    cfg::Backend b;
    b.name = safe_name(s.name);
    if (b.name != s.name) hnote(s.line, "server name '" + s.name + "' written as '" + b.name + "'");
    while (!names.insert(b.name).second) b.name += "_";
    if (!server_endpoint(s, p.listen.port, b.address)) continue;
    if (s.options.port && !p.check.port) b.check_port = static_cast<uint16_t>(s.options.port->value);
    p.backends.push_back(std::move(b));
    const auto& o = s.options;
    if (!o.check || !o.check->value)
      hnote(s.line, "server " + s.name + " has no 'check': HAProxy never checks it and treats it as always up; "
                    "vipproxy checks every backend");
    if (o.maxconn)
      not_translated(file, o.maxconn->line, "maxconn " + std::to_string(o.maxconn->value),
                     "vipproxy limits sessions per proxy (maxconn), not per server");
    if (o.on_marked_down && o.on_marked_down->value == "shutdown-sessions")
      hnote(o.on_marked_down->line, "'on-marked-down shutdown-sessions' is vipproxy's default "
                                    "(shutdown_sessions_on_down: true): nothing to write");
    else if (o.on_marked_down)
      not_translated(file, o.on_marked_down->line, "on-marked-down " + o.on_marked_down->value,
                     "vipproxy closes a demoted backend's sessions (shutdown_sessions_on_down)");
    for (const auto& u : o.unhandled)
      not_translated(file, u.line, u.text, u.reason.empty() ? "server option with no equivalent in vipproxy" : u.reason);
  }
  if (p.backends.empty()) return;
  bool any_shutdown = std::any_of(servers.begin(), servers.end(), [](const hp::Server& s) {
    return s.options.on_marked_down && s.options.on_marked_down->value == "shutdown-sessions";
  });
  if (!any_shutdown)
    hnote(servers.front().line, "no 'on-marked-down shutdown-sessions': HAProxy keeps sessions open on a server "
                                "marked down; vipproxy closes sessions on a demoted backend by default "
                                "(shutdown_sessions_on_down: true), so clients reconnect to the new primary");

  // Timeouts: connect/server/queue/check belong to the backend side, client
  // to the frontend side (as in HAProxy).
  if (auto t = back.timeouts.find("connect"); t != back.timeouts.end()) {
    p.connect_timeout = std::max(Duration{1}, t->second.value);
  } else {
    p.connect_timeout = 5000ms;
    hnote(back.line, "no 'timeout connect' for " + back.name + ": HAProxy waits without limit (and warns); "
                     "connect_timeout 5s is written");
  }
  if (auto t = back.timeouts.find("queue"); t != back.timeouts.end()) p.queue_timeout = t->second.value;
  auto idle = [&](const hp::Section& s, const std::string& which) {
    if (auto t = s.timeouts.find(which); t != s.timeouts.end())
      not_translated(file, t->second.line, "timeout " + which + " " + duration_text(t->second.value),
                     "vipproxy has no idle timeout by default (keepalive instead); set idle_timeout if you want one");
  };
  idle(front, "client");
  idle(back, "server");
  idle(back, "tunnel");
  for (const auto* s : {&front, &back})
    for (const auto& [k, v] : s->timeouts)
      if (k != "connect" && k != "queue" && k != "check" && k != "client" && k != "server" && k != "tunnel")
        not_translated(file, v.line, "timeout " + k + " " + duration_text(v.value),
                       "no equivalent in vipproxy (a TCP proxy)");

  // maxconn: the frontend's, else HAProxy's process-wide limit per proxy.
  const hp::Section* global = nullptr;
  for (const auto& s : h.sections)
    if (s.kind == hp::SectionKind::global) global = &s;
  if (front.maxconn) {
    p.maxconn = std::clamp(front.maxconn->value, 1u, 1'000'000u);
  } else if (global && global->maxconn) {
    p.maxconn = std::clamp(global->maxconn->value, 1u, 1'000'000u);
    hnote(global->maxconn->line, "global 'maxconn " + std::to_string(global->maxconn->value) +
                                     "' written as maxconn of proxy " + p.name + " (vipproxy limits each proxy)");
  }

  // balance
  bool one_leader = p.check.type == cfg::CheckType::http &&
                    (p.check.path == "/" || p.check.path == "/primary" || p.check.path == "/master" ||
                     p.check.path == "/leader" || p.check.path == "/read-write");
  if (!back.balance) {
    if (one_leader) {
      p.balance = cfg::Balance::first;
      hnote(back.line, "no 'balance': HAProxy's default is roundrobin; only the leader passes the " + p.check.path +
                           " check, so vipproxy's default 'first' is kept (the same behaviour)");
    } else {
      p.balance = cfg::Balance::roundrobin;  // HAProxy's default, written explicitly
    }
  } else {
    const std::string& b = back.balance->value;
    if (b == "roundrobin" || b == "static-rr") p.balance = cfg::Balance::roundrobin;
    else if (b == "leastconn") p.balance = cfg::Balance::leastconn;
    else if (b == "first") p.balance = cfg::Balance::first;
    else {
      p.balance = cfg::Balance::roundrobin;
      not_translated(file, back.balance->line, "balance " + b,
                     "vipproxy balances with first, roundrobin or leastconn (no stickiness); roundrobin is written");
    }
  }

  haproxy_unhandled(front.unhandled, false);
  if (&back != &front) haproxy_unhandled(back.unhandled, false);
  for (const auto& u : front.use_backends)
    not_translated(file, u.line, "use_backend " + u.value,
                   "vipproxy sends every connection of a proxy to one backend list (no ACL routing)");
  out_.proxies.push_back(std::move(p));
}

void Converter::haproxy(const hp::Config& h) {
  const std::string& file = opts_.haproxy_file;
  std::set<const hp::Section*> used;
  auto http_mode = [&](const hp::Section& s, const std::string& title) {
    if (!s.mode || s.mode->value == "tcp") return false;
    std::string why = "mode " + s.mode->value + " (vipproxy proxies TCP only)";
    bool stats = std::any_of(s.unhandled.begin(), s.unhandled.end(),
                             [](const Unhandled& u) { return u.text.rfind("stats", 0) == 0; });
    if (stats)
      why += "; its statistics page is replaced by vipproxy's admin endpoint (GET /status and /metrics on "
             "admin.listen, default 127.0.0.1:8405)";
    not_translated(file, s.line, title, why);
    return true;
  };
  for (const auto& s : h.sections) {
    std::string title = s.keyword + (s.name.empty() ? "" : " " + s.name);
    switch (s.kind) {
      case hp::SectionKind::global:
        haproxy_unhandled(s.unhandled, true);
        break;
      case hp::SectionKind::defaults:
        haproxy_unhandled(s.unhandled, false);
        break;
      case hp::SectionKind::other:
        not_translated(file, s.line, title, "section with no equivalent in vipproxy");
        break;
      case hp::SectionKind::listen:
        if (http_mode(s, title)) break;
        proxy(s, s, h);
        break;
      case hp::SectionKind::frontend: {
        if (http_mode(s, title)) break;
        const hp::Section* back = nullptr;
        if (s.default_backend) {
          back = h.find(hp::SectionKind::backend, s.default_backend->value);
          if (!back) {
            not_translated(file, s.default_backend->line, "default_backend " + s.default_backend->value,
                           "no backend of that name");
            break;
          }
        } else if (!s.use_backends.empty()) {
          back = h.find(hp::SectionKind::backend, s.use_backends.front().value);
        }
        if (!back) {
          not_translated(file, s.line, title, "no default_backend");
          break;
        }
        used.insert(back);
        if (http_mode(*back, back->keyword + " " + back->name)) break;
        proxy(s, *back, h);
        break;
      }
      case hp::SectionKind::backend:
        break;
    }
  }
  for (const auto& s : h.sections)
    if (s.kind == hp::SectionKind::backend && !used.count(&s))
      not_translated(file, s.line, "backend " + s.name, "no frontend uses it");
}

// ---------------------------------------------------------------- keepalived

std::string Converter::keepalived_reason(const std::string& text) const {
  auto starts = [&](std::string_view p) { return text.rfind(p, 0) == 0; };
  if (starts("enable_script_security"))
    return "vipproxy runs each track script as its own 'user' (or the daemon's user); there is no separate script security switch";
  if (starts("router_id")) return "vipproxy's node name is 'node' (vipproxy import --node NAME)";
  if (starts("notification_email") || starts("smtp_")) return "vipproxy sends no e-mail; use notify commands";
  if (starts("virtual_server") || starts("real_server") || starts("lvs_"))
    return "LVS load balancing has no equivalent (vipproxy proxies TCP itself)";
  if (starts("vrrp_sync_group")) return "sync groups have no equivalent; each instance elects on its own";
  if (starts("preempt")) return "preempting is the default (preempt: true)";
  if (starts("mcast_src_ip"))
    return "vipproxy sends multicast adverts from the interface's address (unicast_src_ip applies to unicast)";
  if (starts("use_vmac") || starts("vmac_")) return "virtual MAC interfaces have no equivalent";
  if (starts("smtp_alert")) return "vipproxy sends no e-mail; use notify commands";
  return "no equivalent in vipproxy";
}

void Converter::instance(const ka::Instance& in, const ka::Config& k, std::set<std::string>& used_scripts) {
  const std::string& file = opts_.keepalived_file;
  cfg::VrrpInstance v;
  v.name = safe_name(in.name);
  if (v.name != in.name) knote(in.line, "instance name '" + in.name + "' written as '" + v.name + "'");
  if (in.interface) v.interface = in.interface->value;
  else knote(in.line, "vrrp_instance " + in.name + " has no 'interface': vipproxy needs one, add it");
  if (in.state) {
    std::string st = cfg::syntax::lower(in.state->value);
    if (st == "master") v.state = cfg::VrrpState::master;
    else if (st == "backup") v.state = cfg::VrrpState::backup;
    else not_translated(file, in.state->line, "state " + in.state->value, "expected MASTER or BACKUP; backup is written");
  }
  if (in.virtual_router_id) v.virtual_router_id = in.virtual_router_id->value;
  else knote(in.line, "vrrp_instance " + in.name + " has no 'virtual_router_id': vipproxy needs one, add it");
  if (in.priority) v.priority = in.priority->value;
  v.version = in.version ? in.version->value : k.vrrp_version ? k.vrrp_version->value : 2;
  if (in.advert_int) v.advert_int = in.advert_int->value;
  if (in.nopreempt) v.preempt = false;
  if (in.preempt_delay) v.preempt_delay = in.preempt_delay->value;

  // Addresses first: their family decides the version (keepalived moves an
  // IPv6 instance to VRRPv3 by itself).
  std::optional<bool> v6;
  for (const auto& ip : in.virtual_ipaddresses) {
    bool is6 = is_ipv6(ip.address);
    if (!is6 && !is_ipv4(ip.address)) {
      not_translated(file, ip.line, ip.address, "not an IP address");
      continue;
    }
    if (v6 && *v6 != is6) {
      not_translated(file, ip.line, ip.address,
                     "an instance holds addresses of one family; put it in a second instance (with its own "
                     "virtual_router_id or interface)");
      continue;
    }
    v6 = is6;
    cfg::VirtualAddress va;
    va.address = ip.address;
    va.is_ipv6 = is6;
    va.device = ip.device;
    va.label = ip.label;
    va.prefix_len = ip.prefix ? *ip.prefix : (is6 ? 128 : 32);
    if (!ip.prefix && !is6)
      knote(ip.line, "virtual address " + ip.address + " has no prefix: keepalived adds it as /32, so it is written "
                     "as " + ip.address + "/32 (the vipproxy example configuration uses /24, the subnet's prefix; "
                     "either works for a VIP)");
    for (const auto& u : ip.unhandled)
      not_translated(file, ip.line, u, "virtual address option with no equivalent in vipproxy");
    v.virtual_ipaddresses.push_back(std::move(va));
  }
  if (v6 && *v6 && v.version == 2) {
    v.version = 3;
    knote(in.line, "vrrp_instance " + in.name + " holds IPv6 addresses: version 3 is written (VRRPv2 is IPv4 only)");
  }

  if (in.auth_type) {
    std::string t = cfg::syntax::lower(in.auth_type->value);
    if (t == "pass" && v.version == 2 && in.auth_pass) {
      v.auth_type = cfg::AuthType::pass;
      v.auth_password = in.auth_pass->value;
      if (v.auth_password.size() > 8) {
        v.auth_password.resize(8);
        knote(in.auth_pass->line, "auth_pass is longer than 8 characters: keepalived sends only the first 8, so "
                                  "the password is written as those 8");
      }
    } else if (t == "pass" && v.version == 3) {
      not_translated(file, in.auth_type->line, "auth_type PASS",
                     "VRRPv3 has no authentication (keepalived ignores it for version 3 too)");
    } else if (t == "ah") {
      not_translated(file, in.auth_type->line, "auth_type AH",
                     "IPsec AH authentication is not supported (RFC 5798 removed VRRP authentication)");
    } else if (!in.auth_pass) {
      not_translated(file, in.auth_type->line, "auth_type " + in.auth_type->value, "no auth_pass given");
    } else if (t != "pass") {
      not_translated(file, in.auth_type->line, "auth_type " + in.auth_type->value, "expected PASS");
    }
  }

  if (in.unicast_src_ip) v.unicast_src_ip = in.unicast_src_ip->value;
  for (const auto& p : in.unicast_peers) v.unicast_peers.push_back(p.value);
  v.unicast = !v.unicast_peers.empty();

  for (const auto& ti : in.track_interfaces) v.track.interfaces.push_back({ti.name, ti.weight.value_or(0)});

  for (const auto& ts : in.track_scripts) {
    const ka::Script* sc = k.find_script(ts.name);
    if (!sc) {
      not_translated(file, ts.line, ts.name, "no vrrp_script of that name");
      continue;
    }
    used_scripts.insert(sc->name);
    int weight = ts.weight ? *ts.weight : sc->weight ? sc->weight->value : 0;
    std::string command = sc->script ? sc->script->value : "";
    bool is_haproxy_check = contains_ci(sc->name, "haproxy") || contains_ci(command, "haproxy");
    if (is_haproxy_check && !out_.proxies.empty()) {
      std::string names;
      for (const auto& p : out_.proxies) {
        bool dup = std::any_of(v.track.proxies.begin(), v.track.proxies.end(),
                               [&](const cfg::TrackProxy& t) { return t.name == p.name; });
        if (!dup) v.track.proxies.push_back({p.name, weight});
        names += (names.empty() ? "" : ", ") + p.name;
      }
      knote(sc->line, "vrrp_script " + sc->name + (command.empty() ? "" : " (" + command + ")") +
                          " replaced by track: {proxies: [" + names +
                          "]}: the built-in tracking replaces it and is stricter, the proxy counts as up only while "
                          "its listener is up AND at least one backend is eligible from this node (the script only "
                          "checked that HAProxy was running and listening)");
      continue;
    }
    if (is_haproxy_check)
      knote(sc->line, "vrrp_script " + sc->name + " checks HAProxy: kept as a script because no haproxy.cfg was "
                      "imported; once vipproxy runs the proxy, replace it with track: {proxies: [NAME]}");
    if (command.empty()) {
      not_translated(file, sc->line, "vrrp_script " + sc->name, "it has no 'script' line");
      continue;
    }
    cfg::TrackScript t;
    t.name = safe_name(sc->name);
    t.command = command;
    t.interval = sc->interval ? std::max(Duration{1}, sc->interval->value) : kKeepalivedScriptInterval;
    if (sc->timeout) t.timeout = std::max(Duration{1}, sc->timeout->value);
    else t.timeout = t.interval;  // keepalived waits at most one interval
    t.rise = sc->rise ? std::clamp(sc->rise->value, 1u, 1000u) : 1;
    t.fall = sc->fall ? std::clamp(sc->fall->value, 1u, 1000u) : 1;
    t.weight = weight;
    t.user = sc->user ? sc->user->value : k.script_user ? k.script_user->value : "";
    v.track.scripts.push_back(std::move(t));
  }

  v.notify.master = in.notify_master ? in.notify_master->value : "";
  v.notify.backup = in.notify_backup ? in.notify_backup->value : "";
  v.notify.fault = in.notify_fault ? in.notify_fault->value : "";
  v.notify.stop = in.notify_stop ? in.notify_stop->value : "";
  v.notify.any = in.notify ? in.notify->value : "";

  auto pick = [](const auto& mine, const auto& global) { return mine ? mine : global; };
  if (auto d = pick(in.garp_master_delay, k.garp_master_delay)) v.garp.master_delay = d->value;
  if (auto d = pick(in.garp_master_refresh, k.garp_master_refresh)) v.garp.master_refresh = d->value;
  if (auto d = pick(in.garp_interval, k.garp_interval)) v.garp.interval = d->value;
  if (auto r = pick(in.garp_master_repeat, k.garp_master_repeat)) v.garp.master_repeat = std::clamp(r->value, 1u, 255u);

  for (const auto& u : in.unhandled)
    not_translated(file, u.line, u.text, u.reason.empty() ? keepalived_reason(u.text) : u.reason);
  out_.vrrp.push_back(std::move(v));
}

void Converter::keepalived(const ka::Config& k) {
  const std::string& file = opts_.keepalived_file;
  std::set<std::string> used_scripts;
  for (const auto& in : k.instances) instance(in, k, used_scripts);
  for (const auto& sc : k.scripts) {
    if (!used_scripts.count(sc.name))
      not_translated(file, sc.line, "vrrp_script " + sc.name, "no vrrp_instance tracks it");
    for (const auto& u : sc.unhandled)
      not_translated(file, u.line, u.text, u.reason.empty() ? "script option with no equivalent in vipproxy" : u.reason);
  }
  for (const auto& u : k.unhandled)
    not_translated(file, u.line, u.text, u.reason.empty() ? keepalived_reason(u.text) : u.reason);
  if (k.script_user) {
    bool any_script = std::any_of(out_.vrrp.begin(), out_.vrrp.end(),
                                  [](const cfg::VrrpInstance& v) { return !v.track.scripts.empty(); });
    if (!any_script)
      not_translated(file, k.script_user->line, "script_user " + k.script_user->value,
                     "no track script is left to run");
  }
  if (k.instances.empty()) knote(0, "no vrrp_instance found");
}

Result Converter::finish() {
  out_.node = opts_.node;
  Result r;
  r.config = out_;
  r.yaml = to_yaml(out_, {"Generated by `vipproxy import`; review the notes it printed before using this file.",
                          "Reference: README.md (Configuration reference), docs/importer.md."});
  // Notes in file order, then line order; the same item once.
  std::map<std::string, int> file_rank;
  file_rank[opts_.haproxy_file] = 0;
  file_rank.emplace(opts_.keepalived_file, 1);
  std::stable_sort(notes_.begin(), notes_.end(), [&](const Note& a, const Note& b) {
    int fa = file_rank.count(a.file) ? file_rank[a.file] : 2, fb = file_rank.count(b.file) ? file_rank[b.file] : 2;
    return std::tie(fa, a.line) < std::tie(fb, b.line);
  });
  for (const auto& n : notes_)
    if (std::find(r.notes.begin(), r.notes.end(), n) == r.notes.end()) r.notes.push_back(n);
  try {
    cfg::load_string(r.yaml, "<imported configuration>");
  } catch (const cfg::Error& e) {
    r.load_error = e.what();
  }
  return r;
}

// ---------------------------------------------------------------- YAML

// A scalar as YAML: plain when it cannot be mistaken for anything else,
// double-quoted otherwise.
std::string q(const std::string& s) {
  static const std::set<std::string> special = {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"};
  bool plain = !s.empty() && !special.count(cfg::syntax::lower(s));
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-' || c == '@' ||
          c == ':'))
      plain = false;
  if (plain && (s[0] == '-' || s[0] == ':' || s.back() == ':')) plain = false;
  if (plain) return s;
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      o += buf;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + "\"";
}

std::string endpoint(const cfg::Endpoint& e) {
  std::string host = is_ipv6(e.host) ? "[" + e.host + "]" : e.host;
  return q(host + ":" + std::to_string(e.port));
}

}  // namespace

std::string duration_text(Duration d) {
  long long ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string to_yaml(const cfg::Config& c, const std::vector<std::string>& header_comments) {
  std::ostringstream y;
  for (const auto& h : header_comments) y << "# " << h << "\n";
  if (!c.node.empty()) y << "node: " << q(c.node) << "\n";
  const cfg::Proxy dp;
  if (!c.proxies.empty()) y << "\nproxies:\n";
  for (const auto& p : c.proxies) {
    y << "  - name: " << q(p.name) << "\n";
    y << "    listen: " << endpoint(p.listen) << "\n";
    if (p.balance != dp.balance)
      y << "    balance: " << (p.balance == cfg::Balance::roundrobin ? "roundrobin" : "leastconn") << "\n";
    const auto& ck = p.check;
    y << "    check:\n";
    y << "      type: " << (ck.type == cfg::CheckType::http ? "http" : "tcp") << "\n";
    if (ck.port) y << "      port: " << *ck.port << "\n";
    if (ck.type == cfg::CheckType::http) {
      y << "      method: " << q(ck.method) << "\n";
      y << "      path: " << q(ck.path) << "\n";
      y << "      expect_status: " << ck.expect_status << "\n";
    }
    y << "      interval: " << duration_text(ck.interval) << "\n";
    if (ck.fast_interval != std::min(Duration{500}, ck.interval))
      y << "      fast_interval: " << duration_text(ck.fast_interval) << "\n";
    y << "      timeout: " << duration_text(ck.timeout) << "\n";
    y << "      rise: " << ck.rise << "\n";
    y << "      fall: " << ck.fall << "\n";
    if (ck.tls.enabled) {
      y << "      tls:\n        enabled: true\n";
      if (!ck.tls.verify) y << "        verify: false\n";
      if (!ck.tls.ca_file.empty()) y << "        ca_file: " << q(ck.tls.ca_file) << "\n";
      if (!ck.tls.server_name.empty()) y << "        server_name: " << q(ck.tls.server_name) << "\n";
    }
    y << "    connect_timeout: " << duration_text(p.connect_timeout) << "\n";
    if (p.queue_timeout != dp.queue_timeout) y << "    queue_timeout: " << duration_text(p.queue_timeout) << "\n";
    if (p.idle_timeout != dp.idle_timeout) y << "    idle_timeout: " << duration_text(p.idle_timeout) << "\n";
    if (p.maxconn != dp.maxconn) y << "    maxconn: " << p.maxconn << "\n";
    if (p.shutdown_sessions_on_down != dp.shutdown_sessions_on_down)
      y << "    shutdown_sessions_on_down: " << (p.shutdown_sessions_on_down ? "true" : "false") << "\n";
    y << "    backends:\n";
    for (const auto& b : p.backends) {
      y << "      - name: " << q(b.name) << "\n";
      y << "        address: " << endpoint(b.address) << "\n";
      if (b.check_port) y << "        check_port: " << *b.check_port << "\n";
    }
  }
  const cfg::VrrpInstance dv;
  if (!c.vrrp.empty()) y << "\nvrrp:\n";
  for (const auto& v : c.vrrp) {
    y << "  - name: " << q(v.name) << "\n";
    y << "    interface: " << q(v.interface) << "\n";
    y << "    state: " << (v.state == cfg::VrrpState::master ? "master" : "backup") << "\n";
    y << "    virtual_router_id: " << v.virtual_router_id << "\n";
    y << "    priority: " << v.priority << "\n";
    if (v.version != dv.version) y << "    version: " << v.version << "\n";
    y << "    advert_int: " << duration_text(v.advert_int) << "\n";
    if (!v.preempt) y << "    preempt: false\n";
    if (v.preempt_delay != dv.preempt_delay) y << "    preempt_delay: " << duration_text(v.preempt_delay) << "\n";
    if (v.auth_type == cfg::AuthType::pass)
      y << "    authentication:\n      type: pass\n      password: " << q(v.auth_password) << "\n";
    y << "    virtual_ipaddresses:\n";
    for (const auto& a : v.virtual_ipaddresses) {
      std::string addr = a.address + "/" + std::to_string(a.prefix_len);
      if (a.device.empty() && a.label.empty()) {
        y << "      - " << q(addr) << "\n";
      } else {
        y << "      - address: " << q(addr) << "\n";
        if (!a.device.empty()) y << "        device: " << q(a.device) << "\n";
        if (!a.label.empty()) y << "        label: " << q(a.label) << "\n";
      }
    }
    if (!v.unicast_src_ip.empty()) y << "    unicast_src_ip: " << q(v.unicast_src_ip) << "\n";
    if (!v.unicast_peers.empty()) {
      y << "    unicast_peers:\n";
      for (const auto& p : v.unicast_peers) y << "      - " << q(p) << "\n";
    }
    const auto& t = v.track;
    if (!t.proxies.empty() || !t.interfaces.empty() || !t.scripts.empty()) {
      y << "    track:\n";
      auto named_list = [&](const char* key, const auto& items) {
        if (items.empty()) return;
        bool weights = std::any_of(items.begin(), items.end(), [](const auto& i) { return i.weight != 0; });
        if (!weights) {
          y << "      " << key << ": [";
          for (std::size_t i = 0; i < items.size(); ++i) y << (i ? ", " : "") << q(items[i].name);
          y << "]\n";
        } else {
          y << "      " << key << ":\n";
          for (const auto& i : items) y << "        - {name: " << q(i.name) << ", weight: " << i.weight << "}\n";
        }
      };
      named_list("proxies", t.proxies);
      named_list("interfaces", t.interfaces);
      if (!t.scripts.empty()) {
        y << "      scripts:\n";
        for (const auto& s : t.scripts) {
          y << "        - name: " << q(s.name) << "\n";
          y << "          command: " << q(s.command) << "\n";
          y << "          interval: " << duration_text(s.interval) << "\n";
          y << "          timeout: " << duration_text(s.timeout) << "\n";
          y << "          rise: " << s.rise << "\n";
          y << "          fall: " << s.fall << "\n";
          if (s.weight != 0) y << "          weight: " << s.weight << "\n";
          if (!s.user.empty()) y << "          user: " << q(s.user) << "\n";
        }
      }
    }
    const auto& n = v.notify;
    if (!n.master.empty() || !n.backup.empty() || !n.fault.empty() || !n.stop.empty() || !n.any.empty()) {
      y << "    notify:\n";
      if (!n.master.empty()) y << "      master: " << q(n.master) << "\n";
      if (!n.backup.empty()) y << "      backup: " << q(n.backup) << "\n";
      if (!n.fault.empty()) y << "      fault: " << q(n.fault) << "\n";
      if (!n.stop.empty()) y << "      stop: " << q(n.stop) << "\n";
      if (!n.any.empty()) y << "      any: " << q(n.any) << "\n";
    }
    const auto& g = v.garp;
    if (g.master_delay != dv.garp.master_delay || g.master_repeat != dv.garp.master_repeat ||
        g.master_refresh != dv.garp.master_refresh || g.interval != dv.garp.interval) {
      y << "    garp:\n";
      if (g.master_delay != dv.garp.master_delay) y << "      master_delay: " << duration_text(g.master_delay) << "\n";
      if (g.master_repeat != dv.garp.master_repeat) y << "      master_repeat: " << g.master_repeat << "\n";
      if (g.master_refresh != dv.garp.master_refresh)
        y << "      master_refresh: " << duration_text(g.master_refresh) << "\n";
      if (g.interval != dv.garp.interval) y << "      interval: " << duration_text(g.interval) << "\n";
    }
  }
  return y.str();
}

Result convert(const haproxy::Config* hap, const keepalived::Config* ka, const Options& opts) {
  Converter c(opts);
  if (hap) c.haproxy(*hap);
  if (ka) c.keepalived(*ka);
  return c.finish();
}

}  // namespace importer
