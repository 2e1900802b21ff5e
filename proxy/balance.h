// Backend choice, as a pure function so every rule has a unit test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "cfg/config.h"

namespace proxy {

struct Candidate {
  bool eligible = false;
  uint64_t sessions = 0;  // current sessions (leastconn)
};

// `current` is the backend `first` is using now (npos when none): while it is
// still eligible it stays chosen even if another backend also became
// eligible, so a second node answering 200 (Patroni split brain, stale node)
// never makes new sessions flap between two primaries. `ticket` is a
// monotonically increasing number for roundrobin.
inline constexpr size_t npos = static_cast<size_t>(-1);
std::optional<size_t> choose(cfg::Balance balance, std::span<const Candidate> backends, size_t current,
                             uint64_t ticket);

// For `first`: which backend becomes current after an eligibility change.
// Keeps `current` while it is eligible, else the first eligible in config
// order, else npos.
size_t elect_first(std::span<const Candidate> backends, size_t current);

}  // namespace proxy
