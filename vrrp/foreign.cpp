#include "vrrp/foreign.h"

#include <algorithm>

namespace vrrp {

ForeignRouters::Recorded ForeignRouters::record(const IpAddress& src, const Advert& a, InstanceMismatch reason,
                                                bool owner, Clock::time_point now) {
  std::erase_if(routers_, [&](const ForeignRouter& r) { return now - r.last_seen > kForgetAfter; });
  auto it = std::find_if(routers_.begin(), routers_.end(), [&](const ForeignRouter& r) { return r.source == src; });
  Recorded out;
  if (it == routers_.end()) {
    if (routers_.size() >= kMax) return out;
    ForeignRouter r;
    r.source = src;
    r.first_seen = now;
    routers_.push_back(std::move(r));
    it = routers_.end() - 1;
    out.log = true;  // a new sender: say so at once
  }
  ForeignRouter& r = *it;
  // A change of what is wrong (another list, another interval) is news too.
  if (r.count > 0 && (r.reason != reason || r.owner != owner || r.addresses != a.addresses ||
                      r.adver_int != a.adver_int || r.version != a.version))
    out.log = true;
  r.reason = reason;
  r.owner = owner;
  r.version = a.version;
  r.priority = a.priority;
  r.adver_int = a.adver_int;
  r.addresses = a.addresses;
  ++r.count;
  r.last_seen = now;
  if (!out.log && now - r.last_logged >= kLogInterval) out.log = true;
  if (out.log) {
    out.suppressed = r.unlogged;
    r.unlogged = 0;
    r.last_logged = now;
  } else {
    ++r.unlogged;
  }
  out.tracked = true;
  out.entry = &r;
  return out;
}

std::string reason_name(InstanceMismatch reason, bool owner) {
  if (owner) return "owner_address_mismatch";
  switch (reason) {
    case InstanceMismatch::addresses: return "address_mismatch";
    case InstanceMismatch::adver_int: return "adver_int_mismatch";
    case InstanceMismatch::version: return "version_mismatch";
    case InstanceMismatch::vrid: return "other_vrid";
    case InstanceMismatch::none: return "none";
  }
  return "unknown";
}

}  // namespace vrrp
