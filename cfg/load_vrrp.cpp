// The `vrrp` section: each instance (RFC 3768 / RFC 5798 / RFC 9568 rules
// and keepalived's vocabulary), its addresses, tracking, notify hooks and
// gratuitous ARP settings.
#include <arpa/inet.h>

#include <algorithm>
#include <set>

#include "cfg/loader.h"

namespace cfg::detail {

namespace {

std::string canonical_ip(const std::string& s, bool v6) {
  if (!v6) return s;
  in6_addr a{};
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1 || !inet_ntop(AF_INET6, &a, buf, sizeof buf)) return s;
  return buf;
}

bool is_unspecified(const std::string& canon) { return canon == "0.0.0.0" || canon == "::"; }

// fe80::/10 (RFC 4291 §2.5.6).
bool is_link_local6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1 && a.s6_addr[0] == 0xfe && (a.s6_addr[1] & 0xc0) == 0x80;
}
}  // namespace

Duration Loader::advert_int(const Node& n, const std::string& path, unsigned version) {
  // keepalived users write "advert_int 1" (seconds) and, for VRRPv3, "0.1":
  // a bare number here means seconds. Anywhere else a bare number is refused.
  std::string s = scalar(n, path, "an advertisement interval like 1s or 100ms");
  Duration d{};
  if (auto ms = syntax::parse_decimal_seconds(s)) {
    d = Duration{*ms};
  } else if (!parse_duration(s, d)) {
    fail(n, path, "expected an advertisement interval like 1s, 100ms or a number of seconds, got " + describe(n));
  }
  if (version == 2) {
    // RFC 3768 section 5.3.7: an 8-bit count of seconds.
    if (d.count() % 1000 != 0 || d < Duration{1000} || d > Duration{255'000})
      fail(n, path, "expected whole seconds from 1s to 255s for version 2 (VRRPv2 counts seconds), got " + s);
  } else {
    // RFC 5798 section 5.2.7: a 12-bit count of centiseconds.
    if (d.count() % 10 != 0 || d < Duration{10} || d > Duration{40'950})
      fail(n, path,
           "expected a multiple of 10ms from 10ms to 40.95s for version 3 (VRRPv3 counts centiseconds), got " + s);
  }
  return d;
}


VirtualAddress Loader::vip(const Node& n, const std::string& path, const std::string& interface) {
  // "192.168.1.160/24", or {address, prefix | prefix_len, device, label}.
  VirtualAddress va;
  Node addr_node = n;
  std::string addr_path = path;
  std::optional<Node> prefix_node, label_node;
  std::string prefix_path, text;
  const char* expected = "an address like 192.168.1.160/24 or a mapping with address, prefix, device, label";
  if (n.IsMap()) {
    Map m(*this, n, path, {"address", "prefix", "prefix_len", "device", "label"}, expected);
    addr_path = m.path("address");
    addr_node = m.require("address", "an IPv4 or IPv6 address");
    text = nonempty_string(addr_node, addr_path, "an IPv4 or IPv6 address");
    auto p1 = m.get("prefix");
    auto p2 = m.get("prefix_len");
    if (p1 && p2) fail(*p2, m.path("prefix_len"), "give either 'prefix' or 'prefix_len', not both");
    prefix_node = p1 ? p1 : p2;
    prefix_path = m.path(p1 ? "prefix" : "prefix_len");
    if (prefix_node && text.find('/') != std::string::npos)
      fail(*prefix_node, prefix_path, "the address already has a /prefix; give it once");
    if (auto v = m.get("device")) va.device = ifname(*v, m.path("device"));
    label_node = m.get("label");
  } else {
    text = scalar(n, path, expected);
  }
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  va.is_ipv6 = syntax::is_ipv6(addr);
  if (!va.is_ipv6 && !syntax::is_ipv4(addr))
    fail(addr_node, addr_path, "expected an IPv4 or IPv6 address like 192.168.1.160/24, got " + describe(addr_node));
  va.address = canonical_ip(addr, va.is_ipv6);
  if (is_unspecified(va.address))
    fail(addr_node, addr_path, "expected a host address, got the unspecified address " + addr);
  unsigned max = va.is_ipv6 ? 128 : 32;
  std::string prefix_expected = "a prefix length from 0 to " + std::to_string(max);
  if (slash != std::string::npos) {
    auto p = syntax::parse_integer(std::string_view(text).substr(slash + 1), false);
    if (!p || *p > max) fail(addr_node, addr_path, "expected " + prefix_expected + " after '/', got " + quote(text));
    va.prefix_len = static_cast<unsigned>(*p);
  } else if (prefix_node) {
    va.prefix_len = static_cast<unsigned>(integer(*prefix_node, prefix_path, 0, max, prefix_expected));
  } else {
    va.prefix_len = max;  // keepalived's default: a host address
  }
  if (label_node) {
    std::string lpath = path + ".label";
    va.label = nonempty_string(*label_node, lpath, "an address label like eth0:vip");
    if (va.is_ipv6) fail(*label_node, lpath, "labels exist for IPv4 addresses only");
    // The kernel shows a label as an alias of its device: ip(8) requires it
    // to be "<device>:<suffix>", at most 15 characters (IFNAMSIZ - 1).
    std::string dev = va.device.empty() ? interface : va.device;
    if (!va.label.starts_with(dev + ":") || va.label.size() > 15 || va.label.size() == dev.size() + 1)
      fail(*label_node, lpath,
           "expected a label of the form " + dev + ":<suffix> of at most 15 characters, got " + describe(*label_node));
  }
  const YAML::Mark mark = addr_node.Mark();
  va.where = (file_.empty() ? std::string("<config>") : file_) +
             (mark.is_null() ? std::string() : ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1)) +
             ": " + addr_path;
  return va;
}

VrrpInstance Loader::vrrp(const Node& n, const std::string& path) {
  Map m(*this, n, path,
        {"name", "interface", "state", "virtual_router_id", "priority", "version", "advert_int", "preempt",
         "preempt_delay", "authentication", "virtual_ipaddresses", "unicast_src_ip", "unicast_peers", "checksum",
         "track", "notify", "garp"},
        "a VRRP instance (a mapping with name, interface, virtual_router_id...)");
  VrrpInstance v;
  // In this order: later groups depend on the version and on the address
  // family the earlier ones settle.
  std::optional<Node> version_node;
  vrrp_identity(m, v, version_node);
  vrrp_timing(m, v);
  authentication(m, v);
  virtual_ipaddresses(m, v, version_node);
  unicast(m, v);
  checksum(m, v);
  if (auto x = m.get("track")) v.track = track(*x, m.path("track"));
  if (auto x = m.get("notify")) v.notify = notify(*x, m.path("notify"));
  if (auto x = m.get("garp")) v.garp = garp(*x, m.path("garp"));
  return v;
}

// Which router this is: name, interface, VRID, priority, protocol version.
void Loader::vrrp_identity(const Map& m, VrrpInstance& v, std::optional<Node>& version_node) {
  Node name_node = m.require("name", "the instance's name, like VI_1");
  v.name = name(name_node, m.path("name"));
  vrrp_names_.push_back({name_node, m.path("name")});
  v.interface = ifname(m.require("interface", "the network interface, like eth0"), m.path("interface"));
  if (auto x = m.get("state"))
    v.state = choice<VrrpState>(*x, m.path("state"));
  Node vrid = m.require("virtual_router_id", "a VRID from 1 to 255, the same on every node of this VIP");
  v.virtual_router_id = static_cast<unsigned>(integer(vrid, m.path("virtual_router_id"), 1, 255));
  vrrp_idents_.push_back({vrid, m.path("virtual_router_id")});
  if (auto x = m.get("priority")) v.priority = static_cast<unsigned>(integer(*x, m.path("priority"), 1, 255));
  version_node = m.get("version");
  if (version_node) v.version = static_cast<unsigned>(integer(*version_node, m.path("version"), 2, 3, "2 or 3"));
}

// When it speaks and when it takes over.
void Loader::vrrp_timing(const Map& m, VrrpInstance& v) {
  if (auto x = m.get("advert_int")) v.advert_int = advert_int(*x, m.path("advert_int"), v.version);
  if (auto x = m.get("preempt")) v.preempt = boolean(*x, m.path("preempt"));
  if (auto x = m.get("preempt_delay"))
    v.preempt_delay = duration(*x, m.path("preempt_delay"), Duration{0}, Duration{1000 * 1000});
}

// VRRPv2's PASS authentication (RFC 3768 section 5.3.6; gone from RFC 5798).
void Loader::authentication(const Map& m, VrrpInstance& v) {
  auto a = m.get("authentication");
  if (!a) return;
  std::string apath = m.path("authentication");
  Map am(*this, *a, apath, {"type", "password"}, "a mapping {type: pass|none, password}");
  Node type_node = am.require("type", "pass or none");
  v.auth_type = choice<AuthType>(type_node, am.path("type"));
  auto pw = am.get("password");
  if (v.auth_type == AuthType::pass) {
    if (v.version != 2)
      fail(type_node, am.path("type"),
           "PASS authentication exists in VRRPv2 only (RFC 5798 removed it); use version: 2 or type: none");
    if (!pw) am.require("password", "a password of 1 to 8 characters for type: pass");
    v.auth_password = scalar(*pw, am.path("password"), "a password of 1 to 8 characters");
    if (v.auth_password.empty() || v.auth_password.size() > 8)
      fail(*pw, am.path("password"),
           "expected a password of 1 to 8 characters, got " + std::to_string(v.auth_password.size()) +
               ": VRRPv2 carries 8 bytes and keepalived silently truncates longer ones, so they would not match");
  } else if (pw) {
    fail(*pw, am.path("password"), "a password is only used with type: pass");
  }
}

// The addresses it holds: at least one, one family (which settles IPv4 or
// IPv6 for the rest of the instance), none twice.
void Loader::virtual_ipaddresses(const Map& m, VrrpInstance& v, const std::optional<Node>& version_node) {
  Node vips = m.require("virtual_ipaddresses", "a list of at least one address, like [192.168.1.160/24]");
  std::string vpath = m.path("virtual_ipaddresses");
  list(vips, vpath, "addresses like 192.168.1.160/24");
  if (vips.size() == 0) fail(vips, vpath, "expected at least one address, got an empty list");
  std::set<std::string> seen_vips;
  for (std::size_t i = 0; i < vips.size(); ++i) {
    VirtualAddress va = vip(vips[i], index(vpath, i), v.interface);
    // RFC 5798 section 5.2.9: one instance advertises one address family.
    if (i > 0 && va.is_ipv6 != v.virtual_ipaddresses[0].is_ipv6)
      fail(vips[i], index(vpath, i),
           "expected only " + std::string(v.virtual_ipaddresses[0].is_ipv6 ? "IPv6" : "IPv4") +
               " addresses: an instance is IPv4 or IPv6; put the other family in a second instance");
    if (!seen_vips.insert(va.address).second) fail(vips[i], index(vpath, i), "duplicate address " + va.address);
    // The advert's address count is one byte (RFC 5798 §5.2.5, RFC 3768
    // §5.3.5): a 256th address would be sent as a count of 0 and every peer
    // would drop the advert as malformed.
    if (i == 255)
      fail(vips[i], index(vpath, i),
           "at most 255 addresses per instance (an advert counts them in one byte, RFC 5798 section 5.2.5); "
           "put the others in a second instance with its own virtual_router_id");
    v.virtual_ipaddresses.push_back(std::move(va));
  }
  if (v.virtual_ipaddresses[0].is_ipv6 && v.version == 2)
    fail(version_node ? *version_node : vips, version_node ? m.path("version") : vpath,
         "VRRPv2 carries IPv4 only (RFC 3768); set version: 3 for IPv6 addresses");
}

// Unicast adverts: our source and the peers, in the instance's family.
void Loader::unicast(const Map& m, VrrpInstance& v) {
  const bool v6 = v.virtual_ipaddresses[0].is_ipv6;
  std::string family = v6 ? "an IPv6" : "an IPv4";
  auto peer_ip = [&](const Node& x, const std::string& p) {
    std::string s = nonempty_string(x, p, family + " address");
    if (!(v6 ? syntax::is_ipv6(s) : syntax::is_ipv4(s)))
      fail(x, p, "expected " + family + " address (the family of virtual_ipaddresses), got " + describe(x));
    std::string canon = canonical_ip(s, v6);
    if (is_unspecified(canon)) fail(x, p, "expected a host address, got the unspecified address " + s);
    return canon;
  };
  if (auto x = m.get("unicast_src_ip")) v.unicast_src_ip = peer_ip(*x, m.path("unicast_src_ip"));
  if (auto x = m.get("unicast_peers")) {
    std::string ppath = m.path("unicast_peers");
    list(*x, ppath, "peer addresses");
    if (x->size() == 0)
      fail(*x, ppath, "expected at least one peer address (leave unicast_peers out for multicast), got an empty list");
    for (std::size_t i = 0; i < x->size(); ++i) {
      std::string ip = peer_ip((*x)[i], index(ppath, i));
      if (std::find(v.unicast_peers.begin(), v.unicast_peers.end(), ip) != v.unicast_peers.end())
        fail((*x)[i], index(ppath, i), "duplicate peer " + ip);
      if (ip == v.unicast_src_ip)
        fail((*x)[i], index(ppath, i), "this is unicast_src_ip, this node's own address: expected the other nodes");
      // IPv6 adverts go out from our link-local address unless
      // unicast_src_ip names another (RFC 5798 §5.1.2.1), and our IPv6
      // socket is bound to that source: it hears only what is sent to it.
      // A peer listed by a global address sends to the global address its
      // own file lists for us, and hears only its listed peers: neither
      // node heard the other, both were MASTER with the VIP, no drop
      // counted (tests/integration/test_vrrp_netns.py, IPv6 test_4).
      if (v6 && v.unicast_src_ip.empty() && !is_link_local6(ip))
        fail((*x)[i], index(ppath, i),
             "an IPv6 peer by a global address needs unicast_src_ip, the global address of this node that "
             "the peers list: without it adverts go out from the link-local address and neither node hears "
             "the other (both MASTER); set unicast_src_ip, or list the peers by their link-local (fe80::) "
             "addresses");
      v.unicast_peers.push_back(ip);
    }
    v.unicast = true;
  }
}

// The VRRPv3 IPv4 checksum form (docs/design.md "VRRPv3 IPv4 checksum").
void Loader::checksum(const Map& m, VrrpInstance& v) {
  auto x = m.get("checksum");
  if (!x) return;
  v.checksum = choice<ChecksumForm>(*x, m.path("checksum"));
  if (v.version != 3 || v.virtual_ipaddresses[0].is_ipv6)
    fail(*x, m.path("checksum"),
         "only applies to version 3 over IPv4 (the other forms have a single checksum rule); remove it");
}

Track Loader::track(const Node& n, const std::string& path) {
  Map m(*this, n, path, {"proxies", "scripts", "interfaces"}, "a mapping with proxies, scripts, interfaces");
  Track t;
  // Entries of proxies/interfaces are a bare name or {name, weight}.
  auto named = [&](const Node& x, const std::string& p, bool is_interface, int& weight) {
    if (x.IsMap()) {
      Map em(*this, x, p, {"name", "weight"}, "a name or a mapping {name, weight}");
      Node nn = em.require("name", is_interface ? "an interface name" : "a proxy name");
      if (auto w = em.get("weight")) weight = this->weight(*w, em.path("weight"));
      return std::pair{nn, em.path("name")};
    }
    return std::pair{x, p};
  };
  if (auto x = m.get("proxies")) {
    std::string p = m.path("proxies");
    list(*x, p, "proxy names or {name, weight}");
    for (std::size_t i = 0; i < x->size(); ++i) {
      TrackProxy tp;
      auto [nn, np] = named((*x)[i], index(p, i), false, tp.weight);
      tp.name = name(nn, np);
      for (const auto& other : t.proxies)
        if (other.name == tp.name) fail(nn, np, "proxy " + quote(tp.name) + " is already tracked");
      track_proxy_refs_.push_back({nn, np});
      t.proxies.push_back(std::move(tp));
    }
  }
  if (auto x = m.get("interfaces")) {
    std::string p = m.path("interfaces");
    list(*x, p, "interface names or {name, weight}");
    for (std::size_t i = 0; i < x->size(); ++i) {
      TrackInterface ti;
      auto [nn, np] = named((*x)[i], index(p, i), true, ti.weight);
      ti.name = ifname(nn, np);
      for (const auto& other : t.interfaces)
        if (other.name == ti.name) fail(nn, np, "interface " + quote(ti.name) + " is already tracked");
      t.interfaces.push_back(std::move(ti));
    }
  }
  if (auto x = m.get("scripts")) {
    std::string p = m.path("scripts");
    list(*x, p, "scripts, each {name, command, interval, ...}");
    for (std::size_t i = 0; i < x->size(); ++i) {
      Map sm(*this, (*x)[i], index(p, i), {"name", "command", "interval", "timeout", "rise", "fall", "weight", "user"},
             "a script (a mapping with name, command, interval, timeout, rise, fall, weight, user)");
      TrackScript s;
      Node nn = sm.require("name", "the script's name");
      s.name = name(nn, sm.path("name"));
      for (const auto& other : t.scripts)
        if (other.name == s.name) fail(nn, sm.path("name"), "duplicate script name " + quote(s.name));
      s.command = nonempty_string(sm.require("command", "the command to run"), sm.path("command"), "a command line");
      if (auto v = sm.get("interval")) s.interval = duration(*v, sm.path("interval"), Duration{1});
      if (auto v = sm.get("timeout")) s.timeout = duration(*v, sm.path("timeout"), Duration{1});
      if (auto v = sm.get("rise")) s.rise = static_cast<unsigned>(integer(*v, sm.path("rise"), 1, 1000));
      if (auto v = sm.get("fall")) s.fall = static_cast<unsigned>(integer(*v, sm.path("fall"), 1, 1000));
      if (auto v = sm.get("weight")) s.weight = weight(*v, sm.path("weight"));
      if (auto v = sm.get("user")) s.user = nonempty_string(*v, sm.path("user"), "a user name");
      t.scripts.push_back(std::move(s));
    }
  }
  return t;
}

Notify Loader::notify(const Node& n, const std::string& path) {
  Map m(*this, n, path, {"master", "backup", "fault", "stop", "any", "timeout", "max_running"},
        "a mapping with master, backup, fault, stop, any (commands), timeout, max_running");
  Notify no;
  auto cmd = [&](std::string_view key, std::string& out) {
    if (auto v = m.get(key)) out = string(*v, m.path(key));
  };
  cmd("master", no.master);
  cmd("backup", no.backup);
  cmd("fault", no.fault);
  cmd("stop", no.stop);
  cmd("any", no.any);
  if (auto v = m.get("timeout")) no.timeout = duration(*v, m.path("timeout"), Duration{1}, Duration{3'600'000});
  if (auto v = m.get("max_running"))
    no.max_running = static_cast<unsigned>(integer(*v, m.path("max_running"), 1, 64));
  return no;
}

Garp Loader::garp(const Node& n, const std::string& path) {
  Map m(*this, n, path, {"master_delay", "master_repeat", "master_refresh", "interval"},
        "a mapping with master_delay, master_repeat, master_refresh, interval");
  Garp g;
  if (auto v = m.get("master_delay")) g.master_delay = duration(*v, m.path("master_delay"), Duration{0}, {}, true);
  if (auto v = m.get("master_repeat"))
    g.master_repeat = static_cast<unsigned>(integer(*v, m.path("master_repeat"), 1, 255));
  if (auto v = m.get("master_refresh"))
    g.master_refresh = duration(*v, m.path("master_refresh"), Duration{0}, {}, true);
  if (auto v = m.get("interval")) g.interval = duration(*v, m.path("interval"), Duration{0}, Duration{10'000});
  return g;
}

}  // namespace cfg::detail
