// Durations are written with a unit ("250ms", "2s", "1m", "1.5s", "1h",
// "1m30s": several units each once, larger first). A bare number is refused
// because it is ambiguous: HAProxy reads "inter 2000" as milliseconds,
// keepalived reads "advert_int 1" as seconds.
#include <string>
#include <string_view>

#include "cfg/load.h"

namespace cfg {

namespace {

// Longer than any timer the daemon arms (about 31 years); keeps the
// arithmetic far from overflow.
constexpr long long kMaxMs = 1'000'000'000'000LL;

}  // namespace

bool parse_duration(std::string_view text, Duration& out) {
  if (text.empty()) return false;
  long long total = 0;
  // Each unit once, larger first ("1h30m", "1m30s"): "1s1s" or "30s1m" is
  // a typo far more often than a sum, so it is refused, not added up.
  long long previous_unit_ms = 0;
  std::string_view s = text;
  while (!s.empty()) {
    // <digits>[.<digits>]
    long long mantissa = 0;
    long long divisor = 1;
    std::size_t digits = 0;
    bool seen_dot = false;
    std::size_t i = 0;
    for (; i < s.size(); ++i) {
      char c = s[i];
      if (c >= '0' && c <= '9') {
        if (++digits > 15) return false;
        mantissa = mantissa * 10 + (c - '0');
        if (seen_dot) divisor *= 10;
      } else if (c == '.' && !seen_dot && digits > 0) {
        seen_dot = true;
      } else {
        break;
      }
    }
    if (digits == 0 || s[i - 1] == '.') return false;
    s.remove_prefix(i);
    long long unit_ms;
    if (s.starts_with("ms")) {
      unit_ms = 1;
      s.remove_prefix(2);
    } else if (s.starts_with("s")) {
      unit_ms = 1000;
      s.remove_prefix(1);
    } else if (s.starts_with("m")) {
      unit_ms = 60'000;
      s.remove_prefix(1);
    } else if (s.starts_with("h")) {
      unit_ms = 3'600'000;
      s.remove_prefix(1);
    } else {
      return false;  // no unit: a bare number, or an unknown unit
    }
    if (previous_unit_ms && unit_ms >= previous_unit_ms) return false;
    previous_unit_ms = unit_ms;
    // mantissa < 1e15 and unit_ms <= 3.6e6 could overflow: bound first.
    if (mantissa / divisor > kMaxMs / unit_ms) return false;
    __int128 scaled = static_cast<__int128>(mantissa) * unit_ms;
    if (scaled % divisor != 0) return false;  // finer than a millisecond
    total += static_cast<long long>(scaled / divisor);
    if (total > kMaxMs) return false;
  }
  out = Duration{total};
  return true;
}

std::string duration_text(Duration d) {
  long long ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace cfg
