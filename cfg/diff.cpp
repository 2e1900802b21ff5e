#include "cfg/diff.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "cfg/names.h"


namespace cfg {

namespace {

std::string show(const std::string& v) { return "'" + v + "'"; }
std::string show(bool v) { return v ? "true" : "false"; }
std::string show(unsigned v) { return std::to_string(v); }
std::string show(Duration v) { return std::to_string(v.count()) + "ms"; }
std::string show(const Endpoint& e) { return e.to_string(); }
std::string show(const std::optional<uint16_t>& v) { return v ? std::to_string(*v) : "(none)"; }
template <class E>
  requires std::is_enum_v<E>
std::string show(E e) {
  return std::string(names::to_string(e));
}
std::string show(const TlsCheck&) { return "(changed)"; }
std::string show(const TcpKeepalive& k) {
  return k.enabled ? show(k.idle) + "/" + show(k.interval) + "/" + std::to_string(k.count) : "off";
}
template <class T> std::string show(const std::vector<T>& v) { return std::to_string(v.size()) + " entries"; }
std::string show(const Track&) { return "(changed)"; }
std::string show(const Notify&) { return "(changed)"; }
std::string show(const Garp&) { return "(changed)"; }

struct Out {
  std::vector<std::string>& lines;
  std::string prefix;
  template <class T> void field(const char* key, const T& a, const T& b) {
    if (a == b) return;
    lines.push_back(prefix + key + " " + show(a) + " -> " + show(b));
  }
};

void diff_check(Out& o, const Check& a, const Check& b) {
  o.field("check.type", a.type, b.type);
  o.field("check.port", a.port, b.port);
  o.field("check.method", a.method, b.method);
  o.field("check.path", a.path, b.path);
  o.field("check.expect_status", a.expect_status, b.expect_status);
  o.field("check.interval", a.interval, b.interval);
  o.field("check.fast_interval", a.fast_interval, b.fast_interval);
  o.field("check.timeout", a.timeout, b.timeout);
  o.field("check.rise", a.rise, b.rise);
  o.field("check.fall", a.fall, b.fall);
  o.field("check.down_on_status", a.down_on_status, b.down_on_status);
  o.field("check.expect_role", a.expect_role, b.expect_role);
  o.field("check.tls", a.tls, b.tls);
}

void diff_proxy(std::vector<std::string>& lines, const Proxy& a, const Proxy& b) {
  Out o{lines, "proxy " + a.name + ": "};
  o.field("listen", a.listen, b.listen);
  o.field("balance", a.balance, b.balance);
  o.field("connect_timeout", a.connect_timeout, b.connect_timeout);
  o.field("queue_timeout", a.queue_timeout, b.queue_timeout);
  o.field("idle_timeout", a.idle_timeout, b.idle_timeout);
  o.field("client_fin_timeout", a.client_fin_timeout, b.client_fin_timeout);
  o.field("server_fin_timeout", a.server_fin_timeout, b.server_fin_timeout);
  o.field("maxconn", a.maxconn, b.maxconn);
  o.field("shutdown_sessions_on_down", a.shutdown_sessions_on_down, b.shutdown_sessions_on_down);
  o.field("keepalive", a.keepalive, b.keepalive);
  o.field("tcp_user_timeout", a.tcp_user_timeout, b.tcp_user_timeout);
  o.field("data_path", a.data_path, b.data_path);
  o.field("log_sessions", a.log_sessions, b.log_sessions);
  diff_check(o, a.check, b.check);
  for (const auto& nb : b.backends) {
    const Backend* ob = nullptr;
    for (const auto& x : a.backends)
      if (x.name == nb.name) ob = &x;
    if (!ob) lines.push_back(o.prefix + "backend " + nb.name + " added (" + nb.address.to_string() + ")");
    else if (!same_backend(*ob, nb))
      lines.push_back(o.prefix + "backend " + nb.name + " address " + ob->address.to_string() + " -> " +
                      nb.address.to_string() + " (a new backend: its sessions drain)");
    else if (ob->check_port != nb.check_port)
      lines.push_back(o.prefix + "backend " + nb.name + " check_port " + show(ob->check_port) + " -> " +
                      show(nb.check_port));
  }
  for (const auto& ob : a.backends) {
    bool kept = false;
    for (const auto& x : b.backends) kept = kept || x.name == ob.name;
    if (!kept) lines.push_back(o.prefix + "backend " + ob.name + " removed (its sessions drain)");
  }
  // Order matters for `first` (the first eligible backend takes traffic).
  std::vector<std::string> an, bn;
  for (const auto& x : a.backends) an.push_back(x.name);
  for (const auto& x : b.backends) bn.push_back(x.name);
  if (an.size() == bn.size() && an != bn) lines.push_back(o.prefix + "backend order changed");
}

void diff_vrrp(std::vector<std::string>& lines, const VrrpInstance& a, const VrrpInstance& b) {
  Out o{lines, "vrrp " + a.name + ": "};
  const size_t before = lines.size();
  o.field("interface", a.interface, b.interface);
  o.field("virtual_router_id", a.virtual_router_id, b.virtual_router_id);
  o.field("version", a.version, b.version);
  o.field("virtual_ipaddresses", a.virtual_ipaddresses, b.virtual_ipaddresses);
  o.field("unicast_src_ip", a.unicast_src_ip, b.unicast_src_ip);
  o.field("unicast_peers", a.unicast_peers, b.unicast_peers);
  o.field("checksum", a.checksum, b.checksum);
  o.field("priority", a.priority, b.priority);
  o.field("advert_int", a.advert_int, b.advert_int);
  o.field("preempt", a.preempt, b.preempt);
  o.field("preempt_delay", a.preempt_delay, b.preempt_delay);
  // Read when the instance starts only; named all the same, or a file that
  // changed only this was "unchanged" and the new hint not taken.
  if (a.state != b.state)
    lines.push_back(o.prefix + "state " + show(a.state) + " -> " + show(b.state) +
                    " (a starting hint: used when the instance next starts)");
  if (a.auth_type != b.auth_type || a.auth_password != b.auth_password)
    lines.push_back(o.prefix + "authentication changed");
  o.field("track", a.track, b.track);
  o.field("notify", a.notify, b.notify);
  o.field("garp", a.garp, b.garp);
  if (lines.size() > before && vrrp_needs_restart(a, b)) lines.push_back(o.prefix + "the instance restarts");
}

}  // namespace

bool same_backend(const Backend& running, const Backend& next) {
  return running.name == next.name && running.address == next.address;
}

bool same_listener(const Proxy& running, const Proxy& next) { return running.listen == next.listen; }

namespace {

// The virtual addresses and their devices, in any order: what the instance
// is (its adverts list the addresses, as a set). Their prefix lengths,
// labels and order an engine changes in place.
bool same_addresses_on_same_devices(const std::vector<VirtualAddress>& a, const std::vector<VirtualAddress>& b) {
  if (a.size() != b.size()) return false;
  auto keys = [](const std::vector<VirtualAddress>& v) {
    std::vector<std::pair<std::string, std::string>> k;
    for (const auto& x : v) k.emplace_back(x.address, x.device);
    std::sort(k.begin(), k.end());
    return k;
  };
  return keys(a) == keys(b);
}

}  // namespace

bool vrrp_needs_restart(const VrrpInstance& a, const VrrpInstance& b) {
  // The peers of a unicast instance (whom its adverts go to, whom it
  // hears) and the checksum form it sends are read at every advert: taken in
  // place. A restart, as MASTER, hands the VIP to the peer and takes it back
  // by preemption after Master_Down_Interval; multicast <-> unicast is
  // another socket (the group joined or not), so that does restart.
  // So are a VIP's prefix length and label and the order of the list
  // (Engine::reconfigure): a restart moved the VIP twice for an edit the
  // peer does not even see in our adverts.
  return a.interface != b.interface || a.virtual_router_id != b.virtual_router_id || a.version != b.version ||
         !same_addresses_on_same_devices(a.virtual_ipaddresses, b.virtual_ipaddresses) ||
         a.unicast_src_ip != b.unicast_src_ip || a.unicast != b.unicast;
}

Diff diff(const Config& a, const Config& b) {
  Diff d;
  for (const auto& np : b.proxies) {
    const Proxy* op = nullptr;
    for (const auto& x : a.proxies)
      if (x.name == np.name) op = &x;
    if (!op) d.changes.push_back("proxy " + np.name + " added (listen " + np.listen.to_string() + ")");
    else diff_proxy(d.changes, *op, np);
  }
  for (const auto& op : a.proxies) {
    bool kept = false;
    for (const auto& x : b.proxies) kept = kept || x.name == op.name;
    if (!kept) d.changes.push_back("proxy " + op.name + " removed (its sessions drain)");
  }
  for (const auto& ni : b.vrrp) {
    const VrrpInstance* oi = nullptr;
    for (const auto& x : a.vrrp)
      if (x.name == ni.name) oi = &x;
    if (!oi) d.changes.push_back("vrrp " + ni.name + " added");
    else diff_vrrp(d.changes, *oi, ni);
  }
  for (const auto& oi : a.vrrp) {
    bool kept = false;
    for (const auto& x : b.vrrp) kept = kept || x.name == oi.name;
    if (!kept) d.changes.push_back("vrrp " + oi.name + " removed");
  }
  Out g{d.changes, ""};
  g.field("log_level", a.log_level, b.log_level);
  g.field("hard_stop_after", a.hard_stop_after, b.hard_stop_after);
  if (a.admin.token != b.admin.token) d.changes.push_back("admin.token changed");
  if (a.threads != b.threads) d.restart_only.push_back("threads");
  // Set once at start, before the capabilities it needs are dropped.
  if (a.vrrp_rt_priority != b.vrrp_rt_priority) d.restart_only.push_back("vrrp_rt_priority");
  if (a.node != b.node) d.restart_only.push_back("node");
  if (a.admin.enabled != b.admin.enabled) d.restart_only.push_back("admin.enabled");
  if (a.admin.listen != b.admin.listen) d.restart_only.push_back("admin.listen");
  return d;
}

}  // namespace cfg
