#include "vrrp/vips.h"

#include <algorithm>

namespace vrrp::vips {

using namespace std::chrono_literals;

std::string_view to_string(Presence p) {
  switch (p) {
    case Presence::unknown: return "unknown";
    case Presence::absent: return "absent";
    case Presence::present: return "present";
  }
  return "?";
}

Policy policy_for(Duration advert_int, bool master) {
  Policy p;
  p.retry_base = std::clamp<Duration>(advert_int, 10ms, 1s);
  p.retry_cap = 5s;
  p.give_up_after = 3 * advert_int;
  // The check is an address dump (RTM_GETADDR) on the control thread that
  // also sends our adverts. On Debian 12's Linux 6.1 every rtnetlink dump
  // runs under the RTNL lock, which a host busy with network changes
  // (namespaces torn down, container runtimes) holds for long stretches: a
  // dump every 100 ms advert interval made the master's adverts measurably
  // later under such load (tests/integration/test_flood_netns.py). A VIP
  // deleted behind our back is reported at once by RTM_DELADDR (the engine
  // handles the event); the dump is the backstop for a lost event, once a
  // second is plenty for that.
  p.verify_every = master ? std::max<Duration>(advert_int, 1s) : Duration(5s);
  return p;
}

namespace {

Presence target(bool want) { return want ? Presence::present : Presence::absent; }

// The give-up clock runs while a wanted VIP is not confirmed present.
void settle(Slot& s, bool want, TimePoint now) {
  if (want && s.actual != Presence::present) {
    if (!s.unmet_since) s.unmet_since = now;
  } else {
    s.unmet_since.reset();
  }
}

}  // namespace

bool in_sync(bool want, const Slot& s) { return s.actual == target(want); }

Op due(bool want, const Slot& s, TimePoint now) {
  if (in_sync(want, s)) return Op::none;
  if (s.failures > 0 && now < s.retry_at) return Op::none;
  return want ? Op::add : Op::del;
}

Duration backoff(unsigned failures, const Policy& p) {
  if (failures == 0) return Duration::zero();
  Duration d = p.retry_base;
  for (unsigned i = 1; i < failures && d < p.retry_cap; ++i) d *= 2;
  return std::min(d, p.retry_cap);
}

void record(Slot& s, bool want, Op op, const std::string& error, TimePoint now, const Policy& p) {
  if (op == Op::none) return;
  if (error.empty()) {
    s.actual = op == Op::add ? Presence::present : Presence::absent;
    s.failures = 0;
    s.last_error.clear();
  } else {
    // What the kernel has after a refusal is not known: a refused add
    // leaves it absent in every case we know, but nothing guarantees it.
    // Keep what we knew, unless it contradicts the refusal.
    if (s.actual == target(op == Op::add)) s.actual = Presence::unknown;
    ++s.failures;
    s.retry_at = now + backoff(s.failures, p);
    s.last_error = error;
  }
  settle(s, want, now);
}

void observe(Slot& s, bool want, bool present, TimePoint now) {
  const Presence seen = present ? Presence::present : Presence::absent;
  if (seen != s.actual && seen != target(want)) {
    // Changed behind our back (or first seen): act at once, the back-off
    // of earlier failures does not apply to a new situation.
    s.failures = 0;
  }
  s.actual = seen;
  settle(s, want, now);
}

void forget(Slot& s, bool want, TimePoint now) {
  s.actual = Presence::unknown;
  settle(s, want, now);
}

void want_changed(Slot& s, bool want, TimePoint now) {
  s.failures = 0;
  s.unmet_since.reset();
  settle(s, want, now);
}

bool give_up(bool want, const std::vector<Slot>& slots, TimePoint now, const Policy& p) {
  if (!want) return false;
  return std::any_of(slots.begin(), slots.end(),
                     [&](const Slot& s) { return s.unmet_since && now - *s.unmet_since >= p.give_up_after; });
}

TimePoint next_wake(bool want, const std::vector<Slot>& slots, TimePoint last_verify, TimePoint now,
                    const Policy& p) {
  TimePoint t = last_verify + p.verify_every;
  for (const auto& s : slots) {
    if (in_sync(want, s)) continue;
    t = std::min(t, s.failures > 0 ? s.retry_at : now);  // no failure yet: due now
    if (want && s.unmet_since) t = std::min(t, *s.unmet_since + p.give_up_after);
  }
  return t;
}

std::string_view to_string(Claim c) {
  switch (c) {
    case Claim::free: return "free";
    case Claim::ours: return "ours";
    case Claim::not_ours: return "not ours";
    case Claim::unknown: return "unknown";
  }
  return "?";
}

Claim claim_at_start(const std::optional<std::vector<Entry>>& entries, bool held_by_running) {
  if (held_by_running) return Claim::ours;
  if (!entries) return Claim::unknown;
  if (entries->empty()) return Claim::free;
  // Every entry: an unmarked entry beside a marked one (the host's /24 and
  // a /32 a killed run of ours added on top) is still the host's address,
  // and a removal takes every entry of the address (netlink.cpp).
  const bool all_marked = std::all_of(entries->begin(), entries->end(),
                                      [](const Entry& e) { return e.protocol == kVipAddressProtocol; });
  return all_marked ? Claim::ours : Claim::not_ours;
}

std::vector<Elsewhere> taken_elsewhere(const IpAddress& vip, const std::vector<Elsewhere>& others,
                                       const std::function<bool(const Elsewhere&)>& held) {
  // fe80::/10: scoped to its link (RFC 4291 §2.5.6), not the same address
  // on another device.
  if (vip.family == Family::ipv6 && vip.bytes[0] == 0xfe && (vip.bytes[1] & 0xc0) == 0x80) return {};
  std::vector<Elsewhere> out;
  for (const auto& e : others)
    if (!(held && held(e))) out.push_back(e);
  return out;
}

}  // namespace vrrp::vips
