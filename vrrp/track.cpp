#include "vrrp/track.h"

namespace vrrp::track {

Result apply(unsigned configured, std::span<const Input> inputs) {
  Result r;
  long p = configured;
  for (const auto& in : inputs) {
    if (in.weight == 0) {
      if (!in.ok) r.fault = true;
    } else if (in.weight > 0) {
      if (in.ok) p += in.weight;
    } else if (!in.ok) {
      p += in.weight;
    }
  }
  if (configured >= 255) p = 255;
  // 0 and 255 mean "stop" and "owner" on the wire (RFC 5798 §5.2.4).
  else if (p < 1) p = 1;
  else if (p > 254) p = 254;
  r.priority = unsigned(p);
  return r;
}

bool RiseFall::result(bool success) {
  known_ = true;
  if (success == ok_) {
    streak_ = 0;
    return false;
  }
  ++streak_;
  if (streak_ >= (ok_ ? fall_ : rise_)) {
    ok_ = !ok_;
    streak_ = 0;
    return true;
  }
  return false;
}

}  // namespace vrrp::track
