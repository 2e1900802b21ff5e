// Track inputs (proxies, interfaces, scripts) folded into an effective
// priority and a fault flag, with keepalived's weight rules. Pure: the engine
// feeds it the current results and executes what changes.
#pragma once

#include <cstdint>
#include <span>

namespace vrrp::track {

struct Input {
  int weight = 0;
  bool ok = true;
};

struct Result {
  bool fault = false;       // a weight-0 input is failing
  unsigned priority = 0;    // effective priority, clamped to 1..254 (or 255 for an owner)
};

// keepalived (vrrp_track.c): weight 0 -> the instance goes FAULT while the
// input fails; weight > 0 is added while the input is OK; weight < 0 is
// subtracted (added, being negative) while it fails. An address owner
// (priority 255) is never re-weighted: its priority says "owner", not merit.
Result apply(unsigned configured_priority, std::span<const Input> inputs);

// rise/fall for a track script (keepalived's vrrp_script): `rise` successes
// in a row make a failing script OK, `fall` failures in a row make an OK one
// fail. It starts failing with rise-1 successes counted, like keepalived, so
// the first success is enough when rise is 1 and a node with a broken script
// never looks healthy before the script has run.
class RiseFall {
 public:
  RiseFall(unsigned rise, unsigned fall) : rise_(rise ? rise : 1), fall_(fall ? fall : 1), streak_(rise_ - 1) {}
  // Returns true when `ok()` changed.
  bool result(bool success);
  bool ok() const { return ok_; }
  bool known() const { return known_; }

 private:
  unsigned rise_, fall_;
  unsigned streak_;
  bool ok_ = false;
  bool known_ = false;
};

}  // namespace vrrp::track
