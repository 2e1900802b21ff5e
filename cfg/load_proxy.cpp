// The `proxies` section: each proxy, its check (with TLS), its backends and
// its TCP keepalive.
#include <limits>
#include <map>

#include "cfg/loader.h"

namespace cfg::detail {

Proxy Loader::proxy(const Node& n, const std::string& path) {
  Map m(*this, n, path,
        {"name", "listen", "check", "balance", "backends", "connect_timeout", "queue_timeout", "idle_timeout",
         "client_fin_timeout", "server_fin_timeout", "maxconn", "shutdown_sessions_on_down", "keepalive",
         "tcp_user_timeout", "data_path", "log_sessions"},
        "a proxy (a mapping with name, listen, check, backends...)");
  Proxy p;
  Node name_node = m.require("name", "the proxy's name");
  p.name = name(name_node, m.path("name"));
  proxy_names_.push_back({name_node, m.path("name")});
  Node listen_node = m.require("listen", "the address to listen on, like 0.0.0.0:5433");
  p.listen = endpoint(listen_node, m.path("listen"), true);
  listens_.push_back({listen_node, m.path("listen")});
  if (auto v = m.get("check")) p.check = check(*v, m.path("check"));
  if (auto v = m.get("balance"))
    p.balance = choice<Balance>(*v, m.path("balance"));
  Node backends = m.require("backends", "a list of backends, each {name, address}");
  list(backends, m.path("backends"), "backends (each {name, address, check_port})");
  if (backends.size() == 0) fail(backends, m.path("backends"), "expected at least one backend, got an empty list");
  std::map<std::string, int> names, addresses;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    std::string bpath = index(m.path("backends"), i);
    Map b(*this, backends[i], bpath, {"name", "address", "check_port"},
          "a backend (a mapping with name, address, check_port)");
    Backend be;
    Node bn = b.require("name", "the backend's name");
    be.name = name(bn, b.path("name"));
    if (auto [pos, fresh] = names.emplace(be.name, bn.Mark().line + 1); !fresh)
      fail(bn, b.path("name"),
           "duplicate backend name " + quote(be.name) + " (first at line " + std::to_string(pos->second) +
               "): expected names unique within the proxy");
    Node an = b.require("address", "the backend's host:port, like 192.168.1.151:5432");
    be.address = endpoint(an, b.path("address"), false);
    if (i == 0) backend_addresses_.emplace_back();
    backend_addresses_.back().push_back({an, b.path("address")});
    // One address written two ways ("[::1]" and "[0::1]") is one backend.
    std::string key = syntax::canonical_host(be.address.host) + ":" + std::to_string(be.address.port);
    if (auto [pos, fresh] = addresses.emplace(key, an.Mark().line + 1); !fresh)
      fail(an, b.path("address"),
           "duplicate backend address " + quote(be.address.to_string()) + " (first at line " +
               std::to_string(pos->second) + ")");
    if (auto v = b.get("check_port")) be.check_port = port(*v, b.path("check_port"));
    p.backends.push_back(std::move(be));
  }
  if (auto v = m.get("connect_timeout")) p.connect_timeout = duration(*v, m.path("connect_timeout"), Duration{1});
  if (auto v = m.get("queue_timeout")) p.queue_timeout = duration(*v, m.path("queue_timeout"), Duration{0});
  if (auto v = m.get("idle_timeout")) p.idle_timeout = duration(*v, m.path("idle_timeout"), Duration{0}, {}, true);
  // HAProxy's largest timeout (2^31-1 ms, about 24.8 days) keeps deadlines
  // far from the clock's range.
  for (auto [key, field] : {std::pair{"client_fin_timeout", &p.client_fin_timeout},
                            std::pair{"server_fin_timeout", &p.server_fin_timeout}})
    if (auto v = m.get(key))
      *field = duration(*v, m.path(key), Duration{0}, Duration{std::numeric_limits<int>::max()}, true);
  if (auto v = m.get("maxconn")) p.maxconn = static_cast<unsigned>(integer(*v, m.path("maxconn"), 1, 1'000'000));
  if (auto v = m.get("shutdown_sessions_on_down"))
    p.shutdown_sessions_on_down = boolean(*v, m.path("shutdown_sessions_on_down"));
  if (auto v = m.get("keepalive")) p.keepalive = keepalive(*v, m.path("keepalive"));
  // TCP_USER_TIMEOUT is an unsigned int of milliseconds; INT_MAX keeps it
  // clear of sign trouble in the socket code.
  if (auto v = m.get("tcp_user_timeout"))
    p.tcp_user_timeout =
        duration(*v, m.path("tcp_user_timeout"), Duration{0}, Duration{std::numeric_limits<int>::max()}, true);
  if (auto v = m.get("data_path"))
    p.data_path = choice<DataPath>(*v, m.path("data_path"));
  if (auto v = m.get("log_sessions")) p.log_sessions = boolean(*v, m.path("log_sessions"));
  return p;
}

Check Loader::check(const Node& n, const std::string& path) {
  Map m(*this, n, path,
        {"type", "port", "method", "path", "expect_status", "interval", "fast_interval", "timeout", "rise", "fall",
         "down_on_status", "expect_role", "tls"},
        "a check (a mapping with type, port, path, interval...)");
  Check c;
  if (auto v = m.get("type"))
    c.type = choice<CheckType>(*v, m.path("type"));
  if (auto v = m.get("port")) c.port = port(*v, m.path("port"));
  // A TCP check sends nothing: HTTP settings there are a mistake, not a no-op.
  for (const char* http_only : {"method", "path", "expect_status", "expect_role"})
    if (auto v = m.get(http_only); v && c.type == CheckType::tcp)
      fail(*v, m.path(http_only), "only valid with 'type: http' (this check is 'type: tcp')");
  if (auto v = m.get("method")) {
    c.method = nonempty_string(*v, m.path("method"), "an HTTP method like OPTIONS, HEAD or GET");
    if (!syntax::is_http_token(c.method))
      fail(*v, m.path("method"),
           "expected an HTTP method (an RFC 9110 token) like OPTIONS, HEAD or GET, got " + describe(*v));
  }
  if (auto v = m.get("path")) {
    c.path = scalar(*v, m.path("path"), "an HTTP path starting with '/', like /primary");
    if (c.path.empty() || c.path.front() != '/')
      fail(*v, m.path("path"), "expected an HTTP path starting with '/', like /primary, got " + describe(*v));
    for (unsigned char ch : c.path)
      if (ch <= ' ' || ch == 0x7f)
        fail(*v, m.path("path"), "expected an HTTP path without spaces or control characters, got " + describe(*v));
  }
  if (auto v = m.get("expect_status"))
    c.expect_status =
        static_cast<unsigned>(integer(*v, m.path("expect_status"), 100, 599, "an HTTP status from 100 to 599"));
  if (auto v = m.get("interval")) c.interval = duration(*v, m.path("interval"), Duration{1});
  if (auto v = m.get("fast_interval")) {
    c.fast_interval = duration(*v, m.path("fast_interval"), Duration{1});
    if (c.fast_interval > c.interval)
      fail(*v, m.path("fast_interval"),
           "expected a duration no longer than interval (" + ms_text(c.interval) + "), got " + v->Scalar());
  } else {
    // The default fast interval is only a speed-up: never slower than interval.
    c.fast_interval = std::min(c.fast_interval, c.interval);
  }
  if (auto v = m.get("timeout")) c.timeout = duration(*v, m.path("timeout"), Duration{1});
  if (auto v = m.get("rise")) c.rise = static_cast<unsigned>(integer(*v, m.path("rise"), 1, 1000));
  if (auto v = m.get("fall")) c.fall = static_cast<unsigned>(integer(*v, m.path("fall"), 1, 1000));
  if (auto v = m.get("down_on_status")) c.down_on_status = boolean(*v, m.path("down_on_status"));
  if (auto v = m.get("expect_role"))
    c.expect_role = choice<ExpectRole>(*v, m.path("expect_role"));
  if (auto v = m.get("tls")) {
    c.tls = tls(*v, m.path("tls"));
    // A TCP check only connects: TLS there was silently a plain connect.
    if (c.tls.enabled && c.type == CheckType::tcp)
      fail(*v, m.path("tls"),
           "only valid with 'type: http' (this check is 'type: tcp', which only connects and never does a TLS "
           "handshake)");
  }
  return c;
}

TlsCheck Loader::tls(const Node& n, const std::string& path) {
  // `tls: true` is the short form of `tls: {enabled: true}`.
  TlsCheck t;
  if (n.IsScalar()) {
    t.enabled = boolean(n, path);
    return t;
  }
  Map m(*this, n, path, {"enabled", "verify", "ca_file", "server_name", "cert_file", "key_file"},
        "true/false or a mapping with enabled, verify, ca_file, server_name, cert_file, key_file");
  // Writing a tls block means TLS is wanted unless it says enabled: false.
  t.enabled = true;
  if (auto v = m.get("enabled")) t.enabled = boolean(*v, m.path("enabled"));
  if (auto v = m.get("verify")) t.verify = boolean(*v, m.path("verify"));
  if (auto v = m.get("ca_file"))
    t.ca_file = nonempty_string(*v, m.path("ca_file"), "a path to a PEM file (or a directory) of CA certificates");
  if (auto v = m.get("server_name")) {
    t.server_name = nonempty_string(*v, m.path("server_name"), "a host name");
    if (!syntax::is_hostname(t.server_name))
      fail(*v, m.path("server_name"), "expected a DNS host name, got " + describe(*v));
  }
  // Like ca_file, neither is opened here: read when the check starts and at
  // every SIGHUP (health/probe.cpp), so a renewed certificate is used after
  // a reload.
  if (auto v = m.get("cert_file"))
    t.cert_file =
        nonempty_string(*v, m.path("cert_file"), "a path to a PEM file of the client certificate (and its key)");
  if (auto v = m.get("key_file")) {
    t.key_file = nonempty_string(*v, m.path("key_file"), "a path to a PEM file of the client certificate's key");
    // A key alone would silently be no client certificate at all.
    if (t.cert_file.empty())
      fail(*v, m.path("key_file"), "needs cert_file (the certificate this key belongs to)");
  }
  return t;
}

TcpKeepalive Loader::keepalive(const Node& n, const std::string& path) {
  TcpKeepalive k;
  if (n.IsScalar()) {
    k.enabled = boolean(n, path);
    return k;
  }
  Map m(*this, n, path, {"enabled", "idle", "interval", "count"},
        "true/false or a mapping with enabled, idle, interval, count");
  if (auto v = m.get("enabled")) k.enabled = boolean(*v, m.path("enabled"));
  // TCP_KEEPIDLE and TCP_KEEPINTVL count whole seconds, 1 to 32767 (tcp(7)).
  auto seconds = [&](std::string_view key, Duration& out) {
    auto v = m.get(key);
    if (!v) return;
    out = duration(*v, m.path(key), Duration{1000}, Duration{32767 * 1000});
    if (out.count() % 1000 != 0)
      fail(*v, m.path(key), "expected a whole number of seconds (the kernel counts seconds), got " + v->Scalar());
  };
  seconds("idle", k.idle);
  seconds("interval", k.interval);
  if (auto v = m.get("count")) k.count = static_cast<unsigned>(integer(*v, m.path("count"), 1, 127));
  return k;
}

}  // namespace cfg::detail
