// What spans sections, checked once the whole file has been read: unique
// proxy and instance names, listen addresses that would clash, one instance
// per interface, VRID and family, each virtual address in one instance, and
// track.proxies naming proxies that exist.
#include <algorithm>
#include <string>

#include "cfg/listen.h"
#include "cfg/loader.h"

namespace cfg::detail {

void Loader::cross_check(const Config& c) {
  auto line_of = [](const Located& l) { return std::to_string(l.node.Mark().line + 1); };
  for (std::size_t i = 0; i < c.proxies.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (c.proxies[i].name == c.proxies[j].name)
        fail(proxy_names_[i].node, proxy_names_[i].path,
             "duplicate proxy name " + quote(c.proxies[i].name) + " (first at line " + line_of(proxy_names_[j]) +
                 "): expected names unique");

  // listens_ holds admin.listen (when enabled) first, then each proxy's.
  std::vector<Endpoint> eps;
  if (c.admin.enabled) eps.push_back(c.admin.listen);
  for (const auto& p : c.proxies) eps.push_back(p.listen);
  for (std::size_t i = 0; i < eps.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (listens_clash(eps[i], eps[j]))
        fail(listens_[i].node, listens_[i].path,
             eps[i].to_string() + " clashes with " + listens_[j].path + " (" + eps[j].to_string() + ", line " +
                 line_of(listens_[j]) + "): expected each listen address:port once");

  // A backend that is the proxy's own listener: every session would open
  // another to itself until maxconn or the descriptors ran out.
  std::vector<std::string> vips;
  for (const auto& v : c.vrrp)
    for (const auto& a : v.virtual_ipaddresses) vips.push_back(a.address);
  for (std::size_t pi = 0; pi < c.proxies.size(); ++pi) {
    const Proxy& p = c.proxies[pi];
    for (std::size_t bi = 0; bi < p.backends.size(); ++bi)
      if (backend_is_listener(p.listen, p.backends[bi].address, vips))
        fail(backend_addresses_[pi][bi].node, backend_addresses_[pi][bi].path,
             p.backends[bi].address.to_string() + " is the proxy itself (its listen " + p.listen.to_string() +
                 ", line " + line_of(listens_[c.admin.enabled ? pi + 1 : pi]) +
                 "): every session would connect to the proxy again; expected the database's address");
  }

  for (std::size_t i = 0; i < c.vrrp.size(); ++i) {
    const auto& vi = c.vrrp[i];
    for (std::size_t j = 0; j < i; ++j) {
      const auto& vj = c.vrrp[j];
      if (vi.name == vj.name)
        fail(vrrp_names_[i].node, vrrp_names_[i].path,
             "duplicate instance name " + quote(vi.name) + " (first at line " + line_of(vrrp_names_[j]) + ")");
      // RFC 5798 section 7.3: a VRID identifies one router per LAN and family.
      bool v6i = vi.virtual_ipaddresses[0].is_ipv6, v6j = vj.virtual_ipaddresses[0].is_ipv6;
      if (vi.interface == vj.interface && vi.virtual_router_id == vj.virtual_router_id && v6i == v6j)
        fail(vrrp_idents_[i].node, vrrp_idents_[i].path,
             "VRID " + std::to_string(vi.virtual_router_id) + " on " + vi.interface + " (" + (v6i ? "IPv6" : "IPv4") +
                 ") is already used by " + vrrp_names_[j].path + " " + quote(vj.name) +
                 ": expected one instance per interface, VRID and address family");
      for (const auto& a : vi.virtual_ipaddresses)
        for (const auto& b : vj.virtual_ipaddresses)
          if (a.address == b.address)
            fail(vrrp_names_[i].node, vrrp_names_[i].path,
                 "address " + a.address + " is also managed by instance " + quote(vj.name) +
                     ": expected each virtual address in one instance");
    }
  }

  for (const auto& ref : track_proxy_refs_) {
    std::string n = ref.node.Scalar();
    bool found = std::any_of(c.proxies.begin(), c.proxies.end(), [&](const Proxy& p) { return p.name == n; });
    if (!found) {
      std::vector<std::string_view> names;
      for (const auto& p : c.proxies) names.push_back(p.name);
      fail(ref.node, ref.path,
           "no proxy named " + quote(n) +
               (names.empty() ? std::string(" (no proxies are defined)") : "; expected one of: " + join(names)));
    }
  }
}

}  // namespace cfg::detail
