// Pure verdict logic of `vipproxy doctor`: facts in, verdict lines out. This
// host and its VRRP here (capabilities, interfaces, sysctls, adverts, foreign
// routers, the admin endpoint); the cluster behind the backends (checks,
// Patroni, etcd) in doctor_cluster.cpp.
#include <algorithm>
#include <cctype>
#include <boost/json.hpp>
#include <cstdio>
#include <set>
#include <sstream>

#include "ctl/doctor.h"
#include "ctl/status.h"
#include "daemon/privileges.h"

namespace ctl {

const char* to_string(Level l) {
  switch (l) {
    case Level::ok: return "OK";
    case Level::warn: return "WARN";
    case Level::fail: return "FAIL";
  }
  return "?";
}

std::string format_verdict(const Verdict& v) {
  std::string lvl = to_string(v.level);
  lvl.resize(5, ' ');
  // A reason can quote what a backend or the daemon answered (Patroni's
  // version, a foreign router's reason): no control character reaches the
  // terminal (printable, ctl/status.h); a line break of our own (a
  // multi-line error) starts an indented line.
  const std::string text = v.check + ": " + v.reason;
  std::string out = lvl;
  for (size_t at = 0;;) {
    const size_t nl = text.find('\n', at);
    out += printable(std::string_view(text).substr(at, nl == std::string::npos ? std::string::npos : nl - at));
    if (nl == std::string::npos) break;
    out += "\n      ";
    at = nl + 1;
  }
  return out;
}

int exit_code(const std::vector<Verdict>& vs) {
  for (const auto& v : vs)
    if (v.level == Level::fail) return 1;
  return 0;
}

std::optional<uint64_t> parse_capeff(const std::string& proc_status) {
  std::istringstream in(proc_status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    try {
      return std::stoull(line.substr(7), nullptr, 16);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::vector<Verdict> capability_verdicts(const cfg::Config& c, uint64_t capeff, bool is_root_uid) {
  namespace priv = daemon_::privileges;
  const std::string who = is_root_uid ? "this process (root)" : "this process";
  const char* hint = " (run doctor as root, or as the vipproxy user with the unit's AmbientCapabilities)";
  auto upper = [](std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return s;
  };
  std::string held, missing;
  for (const auto& n : priv::needed(c)) {
    std::string& list = (capeff & priv::bit(n.cap)) ? held : missing;
    list += (list.empty() ? "" : ", ") + upper(priv::name(n.cap)) + " (" + n.why + ")";
  }
  std::vector<Verdict> out;
  if (held.empty() && missing.empty())
    out.push_back({Level::ok, "capabilities",
                   "none needed (no VRRP instance, no port below 1024, no track script with a user)"});
  if (!held.empty()) out.push_back({Level::ok, "capabilities", who + " has " + held});
  if (!missing.empty()) out.push_back({Level::fail, "capabilities", who + " lacks " + missing + hint});
  // Needed only at start, so not in needed() (the daemon drops them right
  // after): loading the kernel data path's program. Without them the daemon
  // runs and says why at start, but a proxy set to kernel uses splice: a
  // warning, not a failure. CAP_SYS_ADMIN allows bpf() and the program's
  // kernel reads too.
  std::string kernel_proxies;
  for (const auto& p : c.proxies)
    if (p.data_path == cfg::DataPath::kernel) kernel_proxies += (kernel_proxies.empty() ? "" : ", ") + p.name;
  if (!kernel_proxies.empty() && !(capeff & priv::bit(priv::kCapSysAdmin))) {
    std::string lacks;
    for (unsigned cap : {priv::kCapBpf, priv::kCapPerfmon})
      if (!(capeff & priv::bit(cap))) lacks += (lacks.empty() ? "" : ", ") + upper(priv::name(cap));
    if (!lacks.empty())
      out.push_back({Level::warn, "capabilities",
                     who + " lacks " + lacks + " (loading the kernel data path at start, for data_path kernel of " +
                         kernel_proxies + "): without them those sessions use splice" + hint});
  }
  return out;
}

std::vector<Verdict> data_path_verdicts(const cfg::Config& c) {
  std::vector<Verdict> out;
  for (const auto& p : c.proxies)
    if (p.data_path == cfg::DataPath::kernel)
      out.push_back({Level::warn, "data path " + p.name, cfg::kKernelDataPathCaveat});
  return out;
}

Verdict interface_verdict(const std::string& ifname, const LinkFacts& f) {
  std::string check = "interface " + ifname;
  if (!f.exists) return {Level::fail, check, "does not exist (ip link show " + ifname + ")"};
  if (!f.admin_up) return {Level::fail, check, "exists but is administratively down (ip link set " + ifname + " up)"};
  if (f.operstate == "up") return {Level::ok, check, "exists and is up"};
  if (f.operstate == "unknown" || f.operstate.empty())
    return {Level::ok, check, "exists and is up (operstate " + (f.operstate.empty() ? "?" : f.operstate) + ")"};
  return {Level::warn, check, "is up but has no carrier (operstate " + f.operstate + "): the instance will be FAULT"};
}

std::vector<std::string> listeners_on_vips(const cfg::Config& c) {
  std::set<std::string> vips;
  for (const auto& v : c.vrrp)
    for (const auto& a : v.virtual_ipaddresses) vips.insert(a.address);
  std::vector<std::string> out;
  for (const auto& p : c.proxies)
    if (vips.count(p.listen.host)) out.push_back(p.name + " " + p.listen.to_string());
  if (c.admin.enabled && vips.count(c.admin.listen.host)) out.push_back("admin " + c.admin.listen.to_string());
  return out;
}

std::vector<Verdict> sysctl_verdicts(const cfg::Config& c, const std::string& ifname, const SysctlFacts& f) {
  std::vector<Verdict> out;
  auto on_vips = listeners_on_vips(c);
  if (on_vips.empty()) {
    out.push_back({Level::ok, "net.ipv4.ip_nonlocal_bind",
                   "not needed: no listener is bound to a VIP (wildcard or local addresses)"});
  } else {
    std::string l;
    bool v6 = false;
    for (const auto& s : on_vips) {
      l += (l.empty() ? "" : ", ") + s;
      if (s.find('[') != std::string::npos) v6 = true;
    }
    auto val = v6 ? f.ipv6_nonlocal_bind : f.ip_nonlocal_bind;
    std::string key = v6 ? "net.ipv6.ip_nonlocal_bind" : "net.ipv4.ip_nonlocal_bind";
    if (!val)
      out.push_back({Level::warn, key, "could not read it; listeners on a VIP (" + l + ") need it set to 1"});
    else if (*val == 1)
      out.push_back({Level::ok, key, "= 1: listeners on a VIP (" + l + ") can bind while this node is BACKUP"});
    else
      out.push_back({Level::fail, key, "= " + std::to_string(*val) + ": listeners on a VIP (" + l +
                                           ") cannot bind while the VIP is on the other node; set it to 1 "
                                           "(/etc/sysctl.d/90-vipproxy.conf) or listen on 0.0.0.0"});
  }
  if (ifname.empty()) return out;
  auto eff = [](std::optional<int> a, std::optional<int> b) -> std::optional<int> {
    if (!a && !b) return std::nullopt;
    return std::max(a.value_or(0), b.value_or(0));  // the kernel uses the larger of all/<if>
  };
  auto ignore = eff(f.arp_ignore_all, f.arp_ignore_if);
  auto announce = eff(f.arp_announce_all, f.arp_announce_if);
  std::string ik = "arp_ignore (" + ifname + ")";
  if (!ignore)
    out.push_back({Level::warn, ik, "could not read net.ipv4.conf.{all," + ifname + "}.arp_ignore"});
  else if (*ignore <= 1)
    out.push_back({Level::ok, ik, "= " + std::to_string(*ignore) + ": ARP requests for the VIP are answered on " + ifname});
  else if (*ignore == 8)
    out.push_back({Level::fail, ik, "= 8: no ARP replies at all, clients cannot find the VIP"});
  else
    out.push_back({Level::warn, ik, "= " + std::to_string(*ignore) +
                                        ": replies only for addresses in the interface's own subnet; a VIP "
                                        "outside it is not answered (0 or 1 advised)"});
  std::string ak = "arp_announce (" + ifname + ")";
  if (!announce)
    out.push_back({Level::warn, ak, "could not read net.ipv4.conf.{all," + ifname + "}.arp_announce"});
  else if (*announce == 0)
    out.push_back({Level::ok, ak, "= 0 (works; 2 is advised so this node's own ARP requests carry its primary "
                                  "address, not the VIP, and neighbours never learn the VIP from a BACKUP)"});
  else
    out.push_back({Level::ok, ak, "= " + std::to_string(*announce)});
  return out;
}

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

std::vector<std::string> our_addresses(const cfg::VrrpInstance& inst) {
  std::vector<std::string> out;
  for (const auto& va : inst.virtual_ipaddresses) out.push_back(va.address);
  return out;
}

bool same_list(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

}  // namespace

Verdict advert_verdict(const cfg::VrrpInstance& inst, const AdvertFacts& f) {
  std::string check = "VRRP adverts " + inst.name + " (vrid " + std::to_string(inst.virtual_router_id) + ")";
  if (!f.listened) return {Level::warn, check, "not listened for: " + f.error};
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f s", f.seconds);
  std::set<std::string> same, other, foreign;
  std::string same_desc, foreign_desc;
  const auto ours = our_addresses(inst);
  for (const auto& a : f.heard) {
    // Another cluster on our VRID: not a peer (vipproxy drops its adverts).
    if (a.vrid == inst.virtual_router_id && a.addresses && a.priority != 255 && !same_list(*a.addresses, ours)) {
      if (foreign.insert(a.source).second)
        foreign_desc += (foreign_desc.empty() ? "" : ", ") + a.source + " (priority " + std::to_string(a.priority) +
                        ", addresses " + join(*a.addresses) + ")";
      continue;
    }
    if (a.vrid == inst.virtual_router_id) {
      if (same.insert(a.source).second)
        same_desc += (same_desc.empty() ? "" : ", ") + a.source + " (v" + std::to_string(a.version) + ", priority " +
                     std::to_string(a.priority) + ")";
    } else {
      other.insert(a.source + "/vrid " + std::to_string(a.vrid));
    }
  }
  std::string others;
  for (const auto& o : other) others += (others.empty() ? "" : ", ") + o;
  const std::string foreign_note =
      foreign.empty() ? ""
                      : "; another VRRP cluster uses VRID " + std::to_string(inst.virtual_router_id) + ": " +
                            foreign_desc + " list other addresses than ours " + join(ours) +
                            " (vipproxy ignores them; give one of the clusters another virtual_router_id)";
  if (!same.empty()) {
    std::string r = "heard " + same_desc + " in " + secs;
    for (const auto& a : f.heard)
      if (a.vrid == inst.virtual_router_id && a.version != inst.version && !foreign.count(a.source)) {
        return {Level::fail, check, r + "; the peer speaks VRRPv" + std::to_string(a.version) + ", this config v" +
                                        std::to_string(inst.version) + " (they will both be MASTER)" + foreign_note};
      }
    return {foreign.empty() ? Level::ok : Level::warn, check, r + foreign_note};
  }
  std::string r = std::string("no peer heard in ") + secs +
                  " (fine if the peer is not running yet; otherwise check that protocol 112 passes the firewall";
  r += inst.unicast ? " and the unicast_peer addresses)" : " and that multicast 224.0.0.18 reaches " + inst.interface + ")";
  if (!others.empty()) r += "; other routers heard: " + others;
  return {Level::warn, check, r + foreign_note};
}

InstanceCounterFacts instance_counters(const std::string& status_json, const std::string& instance) {
  InstanceCounterFacts out;
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(status_json, ec);
  if (ec || !doc.is_object()) return out;
  const auto* vrrp = doc.as_object().if_contains("vrrp");
  if (!vrrp || !vrrp->is_array()) return out;
  auto u64 = [](const boost::json::object& o, const char* k) -> uint64_t {
    const auto* v = o.if_contains(k);
    if (!v) return 0;
    if (v->is_uint64()) return v->as_uint64();
    if (v->is_int64() && v->as_int64() >= 0) return uint64_t(v->as_int64());
    if (v->is_double() && v->as_double() >= 0) return uint64_t(v->as_double());
    return 0;
  };
  auto str = [](const boost::json::object& o, const char* k) -> std::string {
    const auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  for (const auto& iv : vrrp->as_array()) {
    if (!iv.is_object() || str(iv.as_object(), "name") != instance) continue;
    const auto& io = iv.as_object();
    out.found = true;
    out.owner_address_mismatch = u64(io, "owner_address_mismatch");
    if (const auto* d = io.if_contains("drops"); d && d->is_object()) {
      out.address_mismatch = u64(d->as_object(), "address_mismatch");
      out.adver_int_mismatch = u64(d->as_object(), "adver_int_mismatch");
      out.version_mismatch = u64(d->as_object(), "version_mismatch");
      out.own_address = u64(d->as_object(), "own_address");
    }
    if (const auto* fr = io.if_contains("foreign_routers"); fr && fr->is_array()) {
      for (const auto& rv : fr->as_array()) {
        if (!rv.is_object()) continue;
        const auto& ro = rv.as_object();
        ForeignRouterFact r;
        r.source = str(ro, "source");
        r.reason = str(ro, "reason");
        r.version = unsigned(u64(ro, "version"));
        r.priority = unsigned(u64(ro, "priority"));
        r.advert_int_ms = unsigned(u64(ro, "advert_int_ms"));
        r.adverts = u64(ro, "adverts");
        if (const auto* l = ro.if_contains("last_seen_seconds_ago"); l && l->is_number())
          r.last_seen_seconds_ago = l->to_number<double>();
        if (const auto* a = ro.if_contains("addresses"); a && a->is_array())
          for (const auto& x : a->as_array())
            if (x.is_string()) r.addresses.emplace_back(x.as_string());
        out.routers.push_back(std::move(r));
      }
    }
    break;
  }
  return out;
}

Verdict foreign_routers_verdict(const cfg::VrrpInstance& inst, const DaemonFacts& f) {
  std::string check = "foreign routers " + inst.name + " (vrid " + std::to_string(inst.virtual_router_id) + ")";
  if (!f.reached && f.http_status)
    return {Level::ok, check, "not checked: " + f.where + " answered HTTP " + std::to_string(f.http_status) +
                                  (f.http_status == 401 ? " (the token: see the admin endpoint line)" : "")};
  if (!f.reached)
    return {Level::ok, check, "not checked: vipproxy does not answer at " + f.where + " (" + f.error +
                                  "); run doctor again while it runs to read its counters"};
  const auto c = instance_counters(f.status_json, inst.name);
  if (!c.found)
    return {Level::warn, check, "the vipproxy answering at " + f.where + " runs no instance " + inst.name +
                                    " (another config file? a reload pending?)"};
  const uint64_t dropped = c.address_mismatch + c.adver_int_mismatch + c.version_mismatch;
  // Not a foreign router's configuration, but heard on our VRID all the
  // same, and a duplicate address means two MASTERs (vrrp/intake.cpp).
  const std::string own =
      c.own_address == 0
          ? std::string()
          : std::to_string(c.own_address) + " adverts from our own address (drops.own_address): the network "
                "reflects our adverts (a bond, a virtual switch), or another router uses our address (then "
                "neither hears the other and both are MASTER: the daemon's log says which)";
  if (dropped == 0 && c.owner_address_mismatch == 0 && !own.empty()) return {Level::warn, check, own};
  if (dropped == 0 && c.owner_address_mismatch == 0)
    return {Level::ok, check, "none heard since vipproxy started (no advert on VRID " +
                                  std::to_string(inst.virtual_router_id) + " dropped for another address list, "
                                  "advert_int or version)"};
  std::string r;
  const auto ours = our_addresses(inst);
  for (const auto& fr : c.routers) {
    char ago[32];
    std::snprintf(ago, sizeof ago, "%.0f s ago", fr.last_seen_seconds_ago);
    std::string what;
    if (fr.reason == "address_mismatch")
      what = "lists " + join(fr.addresses) + ", ours " + join(ours) + ": another VRRP cluster on VRID " +
             std::to_string(inst.virtual_router_id) + "? give one of the clusters another virtual_router_id";
    else if (fr.reason == "owner_address_mismatch")
      what = "the address owner (priority 255) lists " + join(fr.addresses) + ", ours " + join(ours) +
             " (accepted: it wins the election)";
    else if (fr.reason == "adver_int_mismatch")
      what = "advert_int " + std::to_string(fr.advert_int_ms) + " ms, ours " + std::to_string(inst.advert_int.count()) +
             " ms (VRRPv2 routers must agree)";
    else if (fr.reason == "version_mismatch")
      what = "VRRPv" + std::to_string(fr.version) + ", ours VRRPv" + std::to_string(inst.version);
    else
      what = fr.reason;
    r += (r.empty() ? "" : "; ") + fr.source + " (VRRPv" + std::to_string(fr.version) + ", priority " +
         std::to_string(fr.priority) + ", " + std::to_string(fr.adverts) + " adverts, last " + ago + "): " + what;
  }
  if (r.empty())
    r = std::to_string(dropped) + " adverts dropped (address_mismatch " + std::to_string(c.address_mismatch) +
        ", adver_int_mismatch " + std::to_string(c.adver_int_mismatch) + ", version_mismatch " +
        std::to_string(c.version_mismatch) + ") from senders no longer listed";
  return {Level::warn, check, "heard on our VRID and ignored: " + r + (own.empty() ? "" : "; " + own)};
}

Verdict admin_verdict(const AdminFacts& f) {
  std::string check = "admin endpoint";
  if (!f.enabled) return {Level::ok, check, "disabled (admin.enabled: false)"};
  std::string url = "http://" + f.address + "/status";
  if (!f.reached && f.connected)
    return {Level::warn, check, url + " accepted the connection but gave no complete HTTP answer (" + f.error +
                                    "): another service on that port?"};
  if (!f.reached)
    return {Level::warn, check, url + " does not answer (" + f.error +
                                    "): vipproxy is not running, or admin.listen differs (normal before the first start)"};
  if (f.http_status == 401)
    return {Level::warn, check,
            url + (f.token_source.empty() ? " wants a token" : " refused the token from " + f.token_source) +
                ": give it with --token-file FILE or $VIPPROXY_TOKEN (admin.token of --config is used when readable)"};
  if (f.http_status != 200) return {Level::warn, check, url + " answered HTTP " + std::to_string(f.http_status)};
  if (f.not_json) return {Level::warn, check, url + " answered something that is not the /status JSON"};
  return {Level::ok, check, url + " answers (vipproxy " + f.version + ", node " + f.node + ")" +
                                (f.token_source.empty() ? "" : "; token from " + f.token_source)};
}

bool daemon_holds_vip(const std::string& status_json, const std::string& address, const std::string& device) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(status_json, ec);
  if (ec || !doc.is_object()) return false;
  const auto* vrrp = doc.as_object().if_contains("vrrp");
  if (!vrrp || !vrrp->is_array()) return false;
  for (const auto& inst : vrrp->as_array()) {
    const auto* vips = inst.is_object() ? inst.as_object().if_contains("vips") : nullptr;
    if (!vips || !vips->is_array()) continue;
    for (const auto& v : vips->as_array()) {
      if (!v.is_object()) continue;
      const auto& o = v.as_object();
      const auto* a = o.if_contains("address");
      const auto* d = o.if_contains("device");
      const auto* actual = o.if_contains("actual");
      if (!a || !a->is_string() || !d || !d->is_string() || !actual || !actual->is_string()) continue;
      const std::string text(a->as_string());
      if (text.substr(0, text.find('/')) == address && d->as_string() == device && actual->as_string() == "present")
        return true;
    }
  }
  return false;
}

Verdict vip_address_verdict(const cfg::VirtualAddress& va, const VipFacts& f) {
  using vrrp::vips::Claim;
  const std::string check = "VIP " + va.address;
  if (!f.entries && !f.held_by_daemon)
    return {Level::warn, check,
            "cannot read the addresses of " + f.device + " (" + f.error +
                "): whether it is already an address of this host cannot be told here (vipproxy refuses to start "
                "an instance with a VIP the host already has)"};
  const Claim claim = vrrp::vips::claim_at_start(f.entries, f.held_by_daemon);
  if (!f.elsewhere.empty()) {
    std::string there;
    for (const auto& e : f.elsewhere)
      there += (there.empty() ? "" : ", ") + va.address + "/" + std::to_string(e.entry.prefix_len) + " on " +
               e.device + (e.entry.protocol ? " proto " + std::to_string(e.entry.protocol) : "");
    return {Level::fail, check,
            "already an address of " + f.elsewhere.front().device + " (" + there + "), not of " + f.device +
                " where it would be the VIP: this host answers ARP for it on every interface, as BACKUP too. "
                "vipproxy refuses to start with it as a VIP and never touches the other device: use a free "
                "address (" + (va.where.empty() ? "virtual_ipaddresses" : va.where) + ")"};
  }
  if (claim == Claim::free) return {Level::ok, check, "not on " + f.device + ": free for the VIP"};
  if (f.held_by_daemon) return {Level::ok, check, "on " + f.device + ", installed by the running vipproxy (MASTER)"};
  std::string have;
  for (const auto& e : *f.entries)
    have += (have.empty() ? "" : ", ") + va.address + "/" + std::to_string(e.prefix_len) +
            (e.protocol ? " proto " + std::to_string(e.protocol) : "");
  if (claim == Claim::ours)
    return {Level::warn, check,
            "on " + f.device + " (" + have +
                ", vipproxy's mark) with no vipproxy holding it: left by a run that did not stop cleanly; this "
                "node answers ARP for it until the next start removes it (or vipproxy release-vips)"};
  return {Level::fail, check,
          "already an address of " + f.device + " (" + have +
              ") that vipproxy did not add: the host's own address (RFC 5798's address owner is not run), or "
              "another program's (keepalived still MASTER here?). vipproxy refuses to start with it as a VIP and "
              "never removes it: use a free address (" + (va.where.empty() ? "virtual_ipaddresses" : va.where) +
              ")"};
}

}  // namespace ctl
