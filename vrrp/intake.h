// Packet intake, pure: what a raw channel received -> what the engine does
// with it. A drop (counted by reason, VIPPROXY_VRRP_DROPS), an advert of
// another virtual router (ignored), an advert for our VRID that another
// router's configuration makes us ignore (misconfigured, vrrp/foreign.h),
// our own advert looped back, or an advert for the state machine. The
// rules run in the RFCs' order (RFC 3768 §7.1, RFC 5798 §7.1): IP layer,
// decode() rungs, classify_advert(), then ours: our own source, and a
// unicast instance's peers. Tested as a table (tests/unit/vrrp_intake_test).
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "vrrp/codec.h"
#include "vrrp/counters.h"
#include "vrrp/kernel.h"

namespace vrrp {

// One reason per VIPPROXY_VRRP_DROPS counter, same names.
enum class Drop : uint8_t {
#define VIPPROXY_VRRP_DROP_ENUM(name, help) name,
  VIPPROXY_VRRP_DROPS(VIPPROXY_VRRP_DROP_ENUM)
#undef VIPPROXY_VRRP_DROP_ENUM
};
std::string_view to_string(Drop d);
uint64_t& counter(Drops& drops, Drop d);

struct IntakeConfig {
  Family family = Family::ipv4;        // the instance's; another family is not for us
  AuthExpect auth;
  InstanceExpect expect;
  std::optional<IpAddress> self;       // our advert source: our own adverts looped back
  bool unicast = false;
  std::span<const IpAddress> peers;    // unicast: the only senders heard
};

struct IntakeDecision {
  enum class Kind {
    drop,           // counted under `reason`
    other_vrid,     // another virtual router's advert: not an error
    misconfigured,  // our VRID, but its version, interval or addresses differ (`reason`)
    own,            // from our own source address (counted under Drop::own_address)
    accept,         // for the state machine
  };
  Kind kind = Kind::drop;
  Drop reason = Drop::bad_ip_header;  // drop, misconfigured
  std::optional<IpAddress> src;       // once the IP layer was readable
  std::optional<Advert> advert;       // once decoded
  Intake intake;                      // classify_advert's answer, once decoded
  // Accepted from the address owner although it lists other addresses
  // (RFC 5798 §7.1): heard, but a configuration to fix; reported whatever
  // comes after (own, not a unicast peer, accepted).
  bool owner_lists_other_addresses = false;
};

IntakeDecision classify(const Received& rx, const IntakeConfig& c);

}  // namespace vrrp
