// haproxy.cfg (parsed by importer/haproxy.cpp) -> the `proxies` of a vipproxy
// configuration, with a note for every item that is not translated.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>

#include "cfg/names.h"
#include "importer/converter.h"

namespace importer::detail {

namespace {

// HAProxy's check defaults (doc/configuration.txt, "inter", "rise", "fall"),
// written out explicitly so the result does not depend on either tool's.
constexpr Duration kHaproxyInter = 2000ms;
constexpr unsigned kHaproxyRise = 2;
constexpr unsigned kHaproxyFall = 3;

// HAProxy's crt-base and ca-base (doc/configuration.txt, section 3.1):
// a relative path after `crt` / `ca-file` is read under that directory;
// an absolute one ignores it. Joined with one '/', as HAProxy does.
std::string read_under(const std::string& path, const std::optional<At<std::string>>& base) {
  if (path.starts_with('/') || !base) return path;
  std::string dir = base->value;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + (dir == "/" ? "" : "/") + path;
}

}  // namespace

std::string Converter::under_base(const At<std::string>& path, const char* keyword, const char* base_keyword,
                                  const std::optional<At<std::string>>& base, const char* key) {
  const std::string full = read_under(path.value, base);
  if (path.value.starts_with('/')) return full;
  if (base) {
    bases_used_.insert(base->line);
    hnote(path.line, std::string("'") + keyword + " " + path.value + "' is read under " + base_keyword + " " +
                         base->value + " (line " + std::to_string(base->line) + "): written as " + key + " " + full);
  } else {
    hnote(path.line, std::string("'") + keyword + " " + path.value + "' is relative and no global " + base_keyword +
                         " is set (HAProxy reads it from the directory it runs in): written as is; write the "
                         "absolute path in " + key);
  }
  return full;
}

// `crt PATH` on a server line: the check's client certificate. HAProxy
// reads the key from PATH itself, or, when PATH holds none, from PATH.key
// (ssl-load-extra-files, on by default). The importer decides with the
// files as they are where it runs: PATH.key is written as key_file when it
// exists and PATH is not seen to hold a key. vipproxy reads the files when
// the check starts, so a file missing here is still reported then.
void Converter::client_certificate(const At<std::string>& crt, cfg::TlsCheck& tls) {
  const auto& base = global_ ? global_->crt_base : std::nullopt;
  if (tls.cert_file == read_under(crt.value, base)) return;  // one note per certificate, not per server
  const std::string path = under_base(crt, "crt", "crt-base", base, "check.tls.cert_file");
  tls.cert_file = path;
  tls.key_file.clear();
  bool key_inside = false;
  std::ifstream in(path);
  for (std::string l; in && std::getline(in, l);)
    if (l.starts_with("-----BEGIN") && l.find("PRIVATE KEY-----") != std::string::npos) key_inside = true;
  std::error_code ec;
  const std::string beside = path + ".key";
  if (!key_inside && std::filesystem::is_regular_file(beside, ec)) {
    tls.key_file = beside;
    hnote(crt.line, "'crt " + crt.value + "': its key written as check.tls.key_file " + beside +
                        " (HAProxy's PATH.key beside a PEM without a key)");
  } else if (!key_inside && !in.is_open()) {
    hnote(crt.line, "'crt " + crt.value + "' cannot be read here: check.tls.cert_file must hold the key too, or set "
                        "check.tls.key_file (HAProxy's " + beside + ")");
  }
}

// A `timeout connect|check|queue` that is set. HAProxy stores a time of 0 as
// "not set" (TICK_ETERNITY): connect then waits without limit, check falls
// back to inter and queue to `timeout connect`. Written as 1ms (connect,
// check) or "refuse at once" (queue), a 0 failed every connect and check, or
// every queued client: it is reported and handled as absent instead.
const At<Duration>* Converter::set_timeout(const hp::Section& s, const std::string& which) {
  auto t = s.timeouts.find(which);
  if (t == s.timeouts.end()) return nullptr;
  if (t->second.value.count() == 0) {
    hnote(t->second.line, "'timeout " + which + " 0' is HAProxy's \"not set\" (no limit), not zero: written as if "
                          "absent");
    return nullptr;
  }
  return &t->second;
}

std::string Converter::haproxy_reason(const std::string& text, bool global) const {
  auto starts = [&](std::string_view p) { return text.rfind(p, 0) == 0; };
  if (starts("stats"))
    return "vipproxy's admin endpoint (admin.listen, default 127.0.0.1:8405) serves GET /status (JSON) and "
           "GET /metrics (Prometheus)";
  if (starts("option tcplog") || starts("option httplog"))
    return "vipproxy logs to standard error (the journal under systemd); a line per session: "
           "log_sessions: true on the proxy";
  if (starts("log") || starts("option dontlognull") || starts("option log"))
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
  bool v6 = false;  // ipv6@/tcp6@: an empty or '*' host is IPv6's any-address
  for (std::string_view p : {"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"})
    if (a.rfind(p, 0) == 0) {
      v6 = p == "ipv6@" || p == "tcp6@";
      a = a.substr(p.size());
    }
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
  if (host.empty() || host == "*") host = v6 ? "::" : "0.0.0.0";
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
    if (back.expect_body) {
      // vipproxy judges a body only as Patroni's role (check.expect_role);
      // a rule asking for the primary's role is that, anything else would
      // be lost and every node answering the status would pass.
      const std::string& rule = back.expect_body->value;
      bool primary_role = contains_ci(rule, "role") && (contains_ci(rule, "master") || contains_ci(rule, "primary")) &&
                          !contains_ci(rule, "replica") && !contains_ci(rule, "standby");
      if (primary_role) {
        c.expect_role = cfg::ExpectRole::primary;
        hnote(back.expect_body->line, "'http-check expect " + rule + "' written as expect_role: primary (Patroni's "
                                      "JSON must show role master/primary; vipproxy also requires state running and "
                                      "sends the check as GET)");
      } else {
        refuse(opts_.haproxy_file, back.expect_body->line, "http-check expect " + rule,
               "vipproxy's check looks at the HTTP status (and Patroni's role, check.expect_role), not at other "
               "text; without this rule every server answering " + c.path + " with the status would pass. Write "
               "the check by hand (a Patroni endpoint such as /primary or /replica)");
      }
    }
    if (back.expect_status) {
      c.expect_status = back.expect_status->value;
    } else if (back.expect_body) {
      c.expect_status = 200;
    } else {
      c.expect_status = 200;
      hnote(opt->line, "no 'http-check expect status': HAProxy accepts any 2xx or 3xx reply; vipproxy expects one "
                       "status, expect_status: 200 is written");
    }
  } else {
    c.type = cfg::CheckType::tcp;
    if (opt && opt->value == "tcp-check" && back.tcp_check_probe)
      refuse(opts_.haproxy_file, back.tcp_check_probe->line, back.tcp_check_probe->value,
             "tcp-check send/expect rules speak a protocol on the check connection (e.g. an HTTP request to "
             "Patroni); vipproxy's TCP check only connects, so every server accepting connections would pass. Write "
             "check: {type: http, port: ..., path: /primary} by hand (or use option httpchk) and import again");
    if (opt && opt->value != "tcp-check")
      not_translated(opts_.haproxy_file, opt->line, "option " + opt->value,
                     "vipproxy checks with HTTP (Patroni's REST API) or a TCP connect; a TCP connect check is written");
    if (back.expect_status)
      not_translated(opts_.haproxy_file, back.expect_status->line,
                     "http-check expect status " + std::to_string(back.expect_status->value),
                     "there is no 'option httpchk' in effect");
    if (back.expect_body)
      not_translated(opts_.haproxy_file, back.expect_body->line, "http-check expect " + back.expect_body->value,
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

  if (const auto* t = set_timeout(back, "check")) {
    c.timeout = t->value;
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
  std::string ca_written;  // the last ca-file as written
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
      if (o.ca_file && o.ca_file->value != ca_written) {  // one note per file, not per server
        ca_written = o.ca_file->value;
        if (o.ca_file->value == "@system-ca") {
          // HAProxy's name for the system's trusted CAs (never read under
          // ca-base); vipproxy verifies against them when ca_file is absent.
          c.tls.ca_file.clear();
          hnote(o.ca_file->line, "'ca-file @system-ca' is the system's CA store: check.tls.ca_file left out, which "
                                 "verifies against the same store");
        } else {
          c.tls.ca_file = under_base(*o.ca_file, "ca-file", "ca-base", global_ ? global_->ca_base : std::nullopt,
                                     "check.tls.ca_file");
        }
      }
      const auto& sni = o.check_sni ? o.check_sni : o.verifyhost;
      if (sni && cfg::syntax::is_hostname(sni->value)) c.tls.server_name = sni->value;
      if (o.crt) client_certificate(*o.crt, c.tls);
    } else {
      if (o.verify)
        hnote(o.verify->line, "'verify " + o.verify->value + "' ignored: it applies to TLS (check-ssl/ssl) and server " +
                                  s.name + " is checked in plain " +
                                  (c.type == cfg::CheckType::http ? "HTTP" : "TCP") + "; nothing to translate");
      if (o.ca_file) not_translated(opts_.haproxy_file, o.ca_file->line, "ca-file " + o.ca_file->value, "no TLS check");
      if (o.crt) not_translated(opts_.haproxy_file, o.crt->line, "crt " + o.crt->value, "no TLS check");
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
  // A `disabled` server is in maintenance: HAProxy never sends it a client
  // nor checks it. vipproxy has no such state, so it is left out (written as
  // a backend, it would get clients as soon as its check passed).
  std::vector<hp::Server> active;
  for (const auto& s : back.servers) {
    if (s.options.disabled && s.options.disabled->value)
      not_translated(file, s.options.disabled->line, "server " + s.name + " " + s.address + " disabled",
                     "a disabled server gets no traffic in HAProxy (maintenance); it is left out of backends, add it "
                     "when it is put back in service");
    else
      active.push_back(s);
  }
  if (active.empty()) {
    not_translated(file, back.line, title, "every server of " + back.keyword + " " + back.name + " is disabled");
    return;
  }
  std::vector<hp::Server> servers;
  for (const auto& s : active)
    if (!(s.options.backup && s.options.backup->value)) servers.push_back(s);
  std::vector<const hp::Server*> backups;  // reported once the balance is known
  for (const auto& s : active)
    if (s.options.backup && s.options.backup->value) {
      servers.push_back(s);
      backups.push_back(&s);
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
  const At<Duration>* connect = set_timeout(back, "connect");
  if (const auto* t = connect) {
    p.connect_timeout = t->value;
  } else {
    p.connect_timeout = 5000ms;
    hnote(back.line, "no 'timeout connect' for " + back.name + ": HAProxy waits without limit (and warns); "
                     "connect_timeout 5s is written");
  }
  // HAProxy (configuration.txt, "timeout queue"): unset, the queue waits
  // as long as `timeout connect`; with that unset too (no limit) vipproxy's
  // finite default stays.
  if (const auto* t = set_timeout(back, "queue")) {
    p.queue_timeout = t->value;
  } else if (const auto* c = connect) {
    p.queue_timeout = c->value;
    hnote(back.line, "no 'timeout queue' for " + back.name + ": HAProxy uses 'timeout connect' (" +
                         duration_text(c->value) + ") for the queue, so queue_timeout " + duration_text(c->value) +
                         " is written (a client arriving while no backend is eligible waits that long)");
  }
  // Half-closed sessions: client-fin is the frontend's, server-fin the
  // backend's. HAProxy's 0 is "no timeout", like vipproxy's.
  if (auto t = front.timeouts.find("client-fin"); t != front.timeouts.end())
    p.client_fin_timeout = std::min(t->second.value, Duration{std::numeric_limits<int>::max()});
  if (auto t = back.timeouts.find("server-fin"); t != back.timeouts.end())
    p.server_fin_timeout = std::min(t->second.value, Duration{std::numeric_limits<int>::max()});
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
      if (k != "connect" && k != "queue" && k != "check" && k != "client" && k != "server" && k != "tunnel" &&
          k != "client-fin" && k != "server-fin")
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
    // HAProxy's names for these three are vipproxy's (static-rr is a
    // roundrobin whose weights cannot change at run time).
    if (auto known = cfg::names::parse<cfg::Balance>(b == "static-rr" ? "roundrobin" : b)) p.balance = *known;
    else {
      p.balance = cfg::Balance::roundrobin;
      not_translated(file, back.balance->line, "balance " + b,
                     "vipproxy balances with first, roundrobin or leastconn (no stickiness); roundrobin is written");
    }
  }

  // What a backup server becomes depends on the balance: last in the list
  // is "only when the others are not eligible" for `first` alone; the other
  // algorithms give it its share of clients all the time (e.g. the primary
  // listed as backup of a replica pool then takes read traffic).
  for (const hp::Server* s : backups) {
    if (p.balance == cfg::Balance::first)
      not_translated(file, s->options.backup->line, "backup",
                     "vipproxy has no backup servers; " + s->name + " is listed last, so with balance first it is "
                     "used only when the others are not eligible");
    else
      not_translated(file, s->options.backup->line, "backup",
                     "vipproxy has no backup servers; with balance " +
                         std::string(cfg::names::to_string(p.balance)) + " " + s->name +
                         " gets its share of clients at all times, where HAProxy sent it clients only when no other "
                         "server was up; remove it from backends if that is not wanted");
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
  global_ = h.find(hp::SectionKind::global, "");
  for (const auto& e : h.expanded) hnote(e.line, "environment variable " + e.text + " read as " + e.reason);
  std::set<const hp::Section*> used;
  auto http_mode = [&](const hp::Section& s, const std::string& title) {
    // A `disabled` proxy is not started by HAProxy: nothing listens there.
    if (s.disabled && s.disabled->value) {
      not_translated(file, s.disabled->line, title,
                     "it is 'disabled' (HAProxy does not start it); remove 'disabled' and import again to get it");
      return true;
    }
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
        break;  // crt-base and ca-base: after the proxies, which may read paths under them
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
  if (global_)
    for (const auto* base : {&global_->crt_base, &global_->ca_base})
      if (*base && !bases_used_.count((*base)->line))
        not_translated(file, (*base)->line, (base == &global_->crt_base ? "crt-base " : "ca-base ") + (*base)->value,
                       "vipproxy writes full paths; no relative path of a TLS check was read under it");
}

}  // namespace importer::detail
