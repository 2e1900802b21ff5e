// Routers heard on our VRID whose adverts the intake rules (vrrp/codec
// classify_advert) discard as a misconfiguration: another VRRP cluster on
// the same LAN and VRID (another list of virtual addresses), or a peer set
// up with another advert_int (VRRPv2) or version. One entry per sender, for
// /status (`foreign_routers`, read by `vipproxy doctor`) and for the log's
// rate limit: the first drop from a sender is logged at once, then at most
// one line per sender per kLogInterval with the count in between. Pure: the
// caller passes the time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "vrrp/codec.h"

namespace vrrp {

struct ForeignRouter {
  IpAddress source;
  // Why its last advert was dropped (or, for an address owner, accepted
  // with another list: owner == true).
  InstanceMismatch reason = InstanceMismatch::none;
  bool owner = false;
  uint8_t version = 0, priority = 0;
  uint16_t adver_int = 0;  // as on the wire: v2 seconds, v3 centiseconds
  std::vector<IpAddress> addresses;
  uint64_t count = 0;
  std::chrono::steady_clock::time_point first_seen, last_seen, last_logged;
  uint64_t unlogged = 0;  // since last_logged
};

class ForeignRouters {
 public:
  using Clock = std::chrono::steady_clock;
  // A handful of foreign routers is a real LAN; more are forged sources (a
  // flood): past kMax senders, new ones are not tracked (the caller falls
  // back to its generic, global drop log) until old entries expire.
  static constexpr std::size_t kMax = 16;
  static constexpr Clock::duration kLogInterval = std::chrono::seconds(60);
  static constexpr Clock::duration kForgetAfter = std::chrono::minutes(10);

  struct Recorded {
    bool tracked = false;   // false: table full, not recorded
    bool log = false;       // log this one now
    uint64_t suppressed = 0;  // drops from this sender not logged since the last line
    const ForeignRouter* entry = nullptr;
  };
  Recorded record(const IpAddress& src, const Advert& a, InstanceMismatch reason, bool owner, Clock::time_point now);

  const std::vector<ForeignRouter>& all() const { return routers_; }

 private:
  std::vector<ForeignRouter> routers_;
};

// "address_mismatch", "adver_int_mismatch", "version_mismatch", or
// "owner_address_mismatch" (accepted): the names of the counters.
std::string reason_name(InstanceMismatch reason, bool owner);

}  // namespace vrrp
