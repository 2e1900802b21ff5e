// The engine's side of vrrp/foreign.h: counting, logging and showing the
// adverts on our VRID that another router's configuration makes us ignore.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "vrrp/engine.h"

namespace vrrp {

namespace json = boost::json;

namespace {

std::string list(const std::vector<IpAddress>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i].to_string();
  return s + "]";
}

std::string interval(const Advert& a) {
  return a.version == 2 ? std::to_string(a.adver_int) + " s" : std::to_string(a.adver_int * 10) + " ms";
}

bool overlap(const std::vector<IpAddress>& a, const std::vector<IpAddress>& b) {
  for (const auto& x : a)
    for (const auto& y : b)
      if (x == y) return true;
  return false;
}

}  // namespace

void Engine::misconfigured(const IpAddress& src, const Advert& a, const Intake& in, uint64_t* counter) {
  if (counter) ++*counter;
  const bool owner = in.drop == InstanceMismatch::none;  // accepted from the address owner
  const std::string reason = reason_name(owner ? InstanceMismatch::addresses : in.drop, owner);
  auto r = foreign_.record(src, a, owner ? InstanceMismatch::addresses : in.drop, owner, Clock::now());
  if (!r.tracked) {
    // More senders than a LAN has routers: forged sources. The global,
    // reason-blind limiter keeps the log bounded.
    // (drop() counts too: give it a throwaway, *counter has it already.)
    uint64_t counted_above = 0;
    if (!owner) drop(reason.c_str(), counted_above, &src);
    return;
  }
  if (!r.log) return;
  const std::string who = src.to_string() + " (VRID " + std::to_string(a.vrid) + ", VRRPv" +
                          std::to_string(a.version) + ", priority " + std::to_string(a.priority) + ")";
  const std::string more =
      r.suppressed ? " (+" + std::to_string(r.suppressed) + " more from it since the last message)" : "";
  switch (owner ? InstanceMismatch::none : in.drop) {
    case InstanceMismatch::none:
      spdlog::warn("vrrp {}: advert from {} lists addresses {}, ours are {}: accepted, the sender is the "
                   "address owner (RFC 5798 7.1); give both the same virtual_ipaddresses{}",
                   cfg_.name, who, list(a.addresses), list(vip_addresses_), more);
      break;
    case InstanceMismatch::addresses:
      spdlog::warn("vrrp {}: dropping adverts from {}: it lists addresses {}, ours are {} ({}; RFC 3768/5798 "
                   "7.1){}",
                   cfg_.name, who, list(a.addresses), list(vip_addresses_),
                   overlap(a.addresses, vip_addresses_)
                       ? "a peer with another virtual_ipaddresses list? both nodes need the same list"
                       : "another VRRP cluster on VRID " + std::to_string(a.vrid) +
                             "? give one of the clusters another virtual_router_id",
                   more);
      break;
    case InstanceMismatch::adver_int:
      spdlog::warn("vrrp {}: dropping adverts from {}: advert_int {}, ours {} s (VRRPv2 routers must agree, "
                   "RFC 3768 7.1){}",
                   cfg_.name, who, interval(a), cfg_.advert_int.count() / 1000, more);
      break;
    case InstanceMismatch::version:
      spdlog::warn("vrrp {}: dropping adverts from {}: VRRPv{}, ours VRRPv{} (both nodes need the same "
                   "version){}",
                   cfg_.name, who, a.version, cfg_.version, more);
      break;
    case InstanceMismatch::vrid: break;
  }
}

json::array Engine::foreign_status() const {
  json::array out;
  const auto now = Clock::now();
  for (const auto& r : foreign_.all()) {
    json::object o;
    o["source"] = r.source.to_string();
    o["reason"] = reason_name(r.reason, r.owner);
    o["version"] = r.version;
    o["priority"] = r.priority;
    o["advert_int_ms"] = r.version == 2 ? r.adver_int * 1000 : r.adver_int * 10;
    json::array addrs;
    for (const auto& a : r.addresses) addrs.push_back(json::value(a.to_string()));
    o["addresses"] = std::move(addrs);
    o["adverts"] = r.count;
    o["last_seen_seconds_ago"] = std::chrono::duration<double>(now - r.last_seen).count();
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace vrrp
