// Every struct is taken apart with a structured binding that names all of its
// members: a member added to cfg/config.h without being written here stops
// the build ("N names provided ... decomposes into M elements"), so the dump
// cannot silently drop a key. Write the new key where the loader reads it,
// and set it in tests/unit/cfg_dump_test.cpp (every_key_set).
#include "cfg/dump.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>
#include <sstream>

#include "cfg/load.h"
#include "cfg/names.h"
#include "cfg/syntax.h"

namespace cfg {

namespace {

// A scalar as YAML: plain when it cannot be mistaken for anything else,
// double-quoted otherwise.
std::string q(const std::string& s) {
  static const std::set<std::string> special = {"null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"};
  bool plain = !s.empty() && !special.count(syntax::lower(s));
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-' || c == '@' ||
          c == ':'))
      plain = false;
  // '@' is reserved at the start of a plain scalar (a name may hold it).
  if (plain && (s[0] == '-' || s[0] == ':' || s[0] == '@' || s.back() == ':')) plain = false;
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

std::string text(const std::string& s) { return q(s); }
std::string text(bool b) { return b ? "true" : "false"; }
std::string text(unsigned v) { return std::to_string(v); }
std::string text(int v) { return std::to_string(v); }
std::string text(Duration d) { return duration_text(d); }
std::string text(const Endpoint& e) { return q(e.to_string()); }
template <class E>
  requires std::is_enum_v<E>
std::string text(E e) {
  return std::string(names::to_string(e));
}

class Writer {
 public:
  explicit Writer(DumpKeys keys) : all_(keys == DumpKeys::all) {}

  // A key written whatever its value.
  template <class T>
  void key(int indent, std::string_view k, const T& v) {
    line(indent, k, text(v));
  }
  // A key written in `all` mode, and in `migration` mode when it is not the default.
  template <class T>
  void set(int indent, std::string_view k, const T& v, const T& def) {
    if (all_ || !(v == def)) key(indent, k, v);
  }
  void line(int indent, std::string_view k, const std::string& value) {
    y_ << std::string(indent, ' ') << k << ":" << (value.empty() ? "" : " " + value) << "\n";
  }
  void raw(const std::string& s) { y_ << s; }
  bool all() const { return all_; }
  std::string str() const { return y_.str(); }

 private:
  bool all_;
  std::ostringstream y_;
};

void write_check(Writer& w, const Check& ck) {
  const auto& [type, port, method, path, expect_status, interval, fast_interval, timeout, rise, fall, down_on_status,
               expect_role, tls] = ck;
  const Check d;
  w.line(4, "check", "");
  w.key(6, "type", type);
  if (port) w.key(6, "port", unsigned{*port});
  if (type == CheckType::http) {  // the loader refuses these on a TCP check
    w.key(6, "method", method);
    w.key(6, "path", path);
    w.key(6, "expect_status", expect_status);
  }
  w.key(6, "interval", interval);
  // The loader's default fast interval is never slower than interval.
  w.set(6, "fast_interval", fast_interval, std::min(d.fast_interval, interval));
  w.key(6, "timeout", timeout);
  w.key(6, "rise", rise);
  w.key(6, "fall", fall);
  w.set(6, "down_on_status", down_on_status, d.down_on_status);
  if (type == CheckType::http) w.set(6, "expect_role", expect_role, d.expect_role);
  const auto& [enabled, verify, ca_file, server_name, cert_file, key_file] = tls;
  if (w.all() || !(tls == TlsCheck{})) {
    w.line(6, "tls", "");
    w.key(8, "enabled", enabled);
    w.set(8, "verify", verify, d.tls.verify);
    if (!ca_file.empty()) w.key(8, "ca_file", ca_file);
    if (!server_name.empty()) w.key(8, "server_name", server_name);
    if (!cert_file.empty()) w.key(8, "cert_file", cert_file);
    if (!key_file.empty()) w.key(8, "key_file", key_file);
  }
}

void write_proxy(Writer& w, const Proxy& p) {
  const auto& [name, listen, check, balance, backends, connect_timeout, queue_timeout, idle_timeout,
               client_fin_timeout, server_fin_timeout, maxconn, shutdown_sessions_on_down, keepalive,
               tcp_user_timeout, data_path, log_sessions] = p;
  const Proxy d;
  w.line(2, "- name", q(name));
  w.key(4, "listen", listen);
  w.set(4, "balance", balance, d.balance);
  write_check(w, check);
  w.key(4, "connect_timeout", connect_timeout);
  w.set(4, "queue_timeout", queue_timeout, d.queue_timeout);
  w.set(4, "idle_timeout", idle_timeout, d.idle_timeout);
  w.set(4, "client_fin_timeout", client_fin_timeout, d.client_fin_timeout);
  w.set(4, "server_fin_timeout", server_fin_timeout, d.server_fin_timeout);
  w.set(4, "maxconn", maxconn, d.maxconn);
  w.set(4, "shutdown_sessions_on_down", shutdown_sessions_on_down, d.shutdown_sessions_on_down);
  const auto& [ka_enabled, idle, interval, count] = keepalive;
  if (w.all() || !(keepalive == d.keepalive)) {
    w.line(4, "keepalive", "");
    w.key(6, "enabled", ka_enabled);
    w.key(6, "idle", idle);
    w.key(6, "interval", interval);
    w.key(6, "count", count);
  }
  w.set(4, "tcp_user_timeout", tcp_user_timeout, d.tcp_user_timeout);
  w.set(4, "data_path", data_path, d.data_path);
  w.set(4, "log_sessions", log_sessions, d.log_sessions);
  w.line(4, "backends", "");
  for (const auto& b : backends) {
    const auto& [bname, address, check_port] = b;
    w.line(6, "- name", q(bname));
    w.key(8, "address", address);
    if (check_port) w.key(8, "check_port", unsigned{*check_port});
  }
}

// proxies / interfaces: bare names while no weight is set, else {name, weight}.
template <class Item>
void write_named(Writer& w, std::string_view key, const std::vector<Item>& items) {
  if (items.empty()) {
    if (w.all()) w.line(6, key, "[]");
    return;
  }
  bool weights = std::any_of(items.begin(), items.end(), [](const Item& i) { return i.weight != 0; });
  std::string s;
  if (!weights) {
    s = "[";
    for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + q(items[i].name);
    w.line(6, key, s + "]");
    return;
  }
  w.line(6, key, "");
  for (const auto& i : items) {
    const auto& [name, weight] = i;
    w.raw("        - {name: " + q(name) + ", weight: " + std::to_string(weight) + "}\n");
  }
}

void write_track(Writer& w, const Track& t) {
  const auto& [proxies, scripts, interfaces] = t;
  if (!w.all() && proxies.empty() && interfaces.empty() && scripts.empty()) return;
  w.line(4, "track", "");
  write_named(w, "proxies", proxies);
  write_named(w, "interfaces", interfaces);
  if (scripts.empty()) {
    if (w.all()) w.line(6, "scripts", "[]");
    return;
  }
  const TrackScript d;
  w.line(6, "scripts", "");
  for (const auto& s : scripts) {
    const auto& [name, command, interval, timeout, rise, fall, weight, user] = s;
    w.line(8, "- name", q(name));
    w.key(10, "command", command);
    w.key(10, "interval", interval);
    w.key(10, "timeout", timeout);
    w.key(10, "rise", rise);
    w.key(10, "fall", fall);
    w.set(10, "weight", weight, d.weight);
    if (!user.empty()) w.key(10, "user", user);
  }
}

void write_vrrp(Writer& w, const VrrpInstance& v) {
  const auto& [name, interface, state, virtual_router_id, priority, version, advert_int, preempt, preempt_delay,
               auth_type, auth_password, virtual_ipaddresses, unicast_src_ip, unicast_peers,
               unicast /* derived: unicast_peers given */, checksum, track, notify, garp] = v;
  (void)unicast;
  const VrrpInstance d;
  w.line(2, "- name", q(name));
  w.key(4, "interface", interface);
  w.key(4, "state", state);
  w.key(4, "virtual_router_id", virtual_router_id);
  w.key(4, "priority", priority);
  w.set(4, "version", version, d.version);
  w.key(4, "advert_int", advert_int);
  w.set(4, "preempt", preempt, d.preempt);
  w.set(4, "preempt_delay", preempt_delay, d.preempt_delay);
  if (w.all() || auth_type != d.auth_type) {
    w.line(4, "authentication", "");
    w.key(6, "type", auth_type);
    if (auth_type == AuthType::pass) w.key(6, "password", auth_password);
  }
  w.line(4, "virtual_ipaddresses", "");
  for (const auto& a : virtual_ipaddresses) {
    const auto& [address, prefix_len, device, label, is_ipv6 /* derived from address */,
                 where /* where the file gave it, not a setting */] = a;
    (void)is_ipv6;
    (void)where;
    std::string addr = address + "/" + std::to_string(prefix_len);
    if (device.empty() && label.empty()) {
      w.raw("      - " + q(addr) + "\n");
    } else {
      w.line(6, "- address", q(addr));
      if (!device.empty()) w.key(8, "device", device);
      if (!label.empty()) w.key(8, "label", label);
    }
  }
  if (!unicast_src_ip.empty()) w.key(4, "unicast_src_ip", unicast_src_ip);
  if (!unicast_peers.empty()) {
    w.line(4, "unicast_peers", "");
    for (const auto& p : unicast_peers) w.raw("      - " + q(p) + "\n");
  }
  // The loader takes `checksum` for VRRPv3 over IPv4 only.
  bool v6 = !virtual_ipaddresses.empty() && virtual_ipaddresses.front().is_ipv6;
  if (version == 3 && !v6) w.set(4, "checksum", checksum, d.checksum);
  write_track(w, track);
  const auto& [master, backup, fault, stop, any, notify_timeout, max_running] = notify;
  if (w.all() || !(notify == d.notify)) {
    w.line(4, "notify", "");
    const std::pair<const char*, const std::string*> hooks[] = {
        {"master", &master}, {"backup", &backup}, {"fault", &fault}, {"stop", &stop}, {"any", &any}};
    for (const auto& [k, cmd] : hooks)
      if (w.all() || !cmd->empty()) w.key(6, k, *cmd);
    w.set(6, "timeout", notify_timeout, d.notify.timeout);
    w.set(6, "max_running", max_running, d.notify.max_running);
  }
  const auto& [master_delay, master_repeat, master_refresh, interval] = garp;
  if (w.all() || !(garp == d.garp)) {
    w.line(4, "garp", "");
    w.set(6, "master_delay", master_delay, d.garp.master_delay);
    w.set(6, "master_repeat", master_repeat, d.garp.master_repeat);
    w.set(6, "master_refresh", master_refresh, d.garp.master_refresh);
    w.set(6, "interval", interval, d.garp.interval);
  }
}

}  // namespace

std::string to_yaml(const Config& c, const DumpOptions& opts) {
  const auto& [source /* where it was read from, not a key */, node, threads, vrrp_rt_priority, log_level,
               hard_stop_after, admin, proxies, vrrp] = c;
  (void)source;
  const Config d;
  Writer w(opts.keys);
  for (const auto& h : opts.header_comments) w.raw("# " + h + "\n");
  if (!node.empty()) w.key(0, "node", node);
  w.set(0, "threads", threads, d.threads);
  w.set(0, "vrrp_rt_priority", vrrp_rt_priority, d.vrrp_rt_priority);
  w.set(0, "log_level", log_level, d.log_level);
  w.set(0, "hard_stop_after", hard_stop_after, d.hard_stop_after);
  const auto& [enabled, listen, token] = admin;
  if (w.all() || !(admin == d.admin)) {
    w.line(0, "admin", "");
    w.set(2, "enabled", enabled, d.admin.enabled);
    w.set(2, "listen", listen, d.admin.listen);
    if (!token.empty()) w.key(2, "token", token);
  }
  if (!proxies.empty()) {
    w.raw("\nproxies:\n");
    for (const auto& p : proxies) write_proxy(w, p);
  } else if (w.all()) {
    w.raw("\nproxies: []\n");
  }
  if (!vrrp.empty()) {
    w.raw("\nvrrp:\n");
    for (const auto& v : vrrp) write_vrrp(w, v);
  } else if (w.all()) {
    w.raw("\nvrrp: []\n");
  }
  return w.str();
}

}  // namespace cfg
