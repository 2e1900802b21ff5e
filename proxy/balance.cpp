#include "proxy/balance.h"

#include <algorithm>

namespace proxy {

size_t elect_first(std::span<const Candidate> backends, size_t current) {
  if (current < backends.size() && backends[current].eligible) return current;
  for (size_t i = 0; i < backends.size(); ++i)
    if (backends[i].eligible) return i;
  return npos;
}

size_t elect_first_by_timeline(std::span<const Candidate> backends,
                               std::span<const std::optional<uint64_t>> timelines, size_t current) {
  const size_t today = elect_first(backends, current);
  size_t eligible = 0, best = npos;
  bool tie = false;
  for (size_t i = 0; i < backends.size(); ++i) {
    if (!backends[i].eligible) continue;
    ++eligible;
    if (i >= timelines.size() || !timelines[i]) return today;
    if (best == npos || *timelines[i] > *timelines[best]) {
      best = i;
      tie = false;
    } else if (*timelines[i] == *timelines[best]) {
      tie = true;
    }
  }
  if (eligible < 2 || tie) return today;
  return best;
}

std::chrono::milliseconds timeline_retry_after(std::chrono::milliseconds check_interval, unsigned failures) {
  using std::chrono::milliseconds;
  const milliseconds base = std::max(check_interval, milliseconds(2000));
  const milliseconds cap = std::max(base, milliseconds(10000));
  milliseconds delay = base;
  for (unsigned i = 1; i < failures && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

std::chrono::milliseconds timeline_reread_after(std::chrono::milliseconds check_interval) {
  return std::max(check_interval * 5, std::chrono::milliseconds(10000));
}

std::optional<size_t> choose(cfg::Balance balance, std::span<const Candidate> backends, size_t current,
                             uint64_t ticket) {
  size_t eligible = 0;
  for (const auto& b : backends) eligible += b.eligible ? 1 : 0;
  if (eligible == 0) return std::nullopt;

  switch (balance) {
    case cfg::Balance::first: {
      size_t i = elect_first(backends, current);
      return i == npos ? std::nullopt : std::optional<size_t>(i);
    }
    case cfg::Balance::roundrobin: {
      size_t nth = static_cast<size_t>(ticket % eligible);
      for (size_t i = 0; i < backends.size(); ++i) {
        if (!backends[i].eligible) continue;
        if (nth-- == 0) return i;
      }
      return std::nullopt;  // unreachable
    }
    case cfg::Balance::leastconn: {
      // Ties go round-robin so an idle pool does not pile onto backend 0.
      uint64_t least = UINT64_MAX;
      for (const auto& b : backends)
        if (b.eligible && b.sessions < least) least = b.sessions;
      size_t ties = 0;
      for (const auto& b : backends) ties += (b.eligible && b.sessions == least) ? 1 : 0;
      size_t nth = static_cast<size_t>(ticket % ties);
      for (size_t i = 0; i < backends.size(); ++i) {
        if (!(backends[i].eligible && backends[i].sessions == least)) continue;
        if (nth-- == 0) return i;
      }
      return std::nullopt;  // unreachable
    }
  }
  return std::nullopt;
}

OverlapWatch::Event OverlapWatch::update(std::vector<std::string> eligible) {
  if (eligible.size() < 2) eligible.clear();
  if (eligible == names_) return Event::none;
  const bool was = !names_.empty();
  names_ = std::move(eligible);
  if (names_.empty()) return Event::ended;
  return was ? Event::changed : Event::started;
}

}  // namespace proxy
