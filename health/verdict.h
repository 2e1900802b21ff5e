// What a check's answer means, decided without sockets or clocks: judge()
// turns an HTTP reply into a CheckResult, classify() says what a result does
// to the backend (tests/unit/health_verdict_test.cpp, as tables). The checker
// (health/checker.cpp) is the I/O around them.
#pragma once

#include <string_view>

#include "cfg/config.h"
#include "health/status.h"

namespace health {

// A complete HTTP reply to the check rule's request: the status decides; for
// Patroni's primary endpoints (health/patroni.h) a 200 must also show a
// running, writable primary in the body. `body_truncated`: the body was
// longer than the checker keeps.
CheckResult judge(const cfg::Check& rule, unsigned status, std::string_view body, bool body_truncated);

struct Classification {
  enum class Effect {
    no_evidence,  // nothing is known about the backend (no check yet, or our
                  // own shortage: EMFILE...): its state stays, nothing counted
    success,
    failure,      // may be a blip: counted toward `fall`
    definitive,   // the node's own answer that it is not the one wanted (a
                  // wrong status, a Patroni replica): with check.down_on_status
                  // it takes an UP backend down at once
  };
  Effect effect = Effect::no_evidence;
  // The node answered at layer 7 (well-formed, whatever it said): this node
  // can reach it. VRRP proxy tracking reads it (Status::reachable) to tell
  // "no primary anywhere right now" (a Patroni failover: keep the VIP) from
  // "this node is cut off" (give the VIP away).
  bool reachable = false;
  bool malformed = false;  // counted apart (Status::malformed)
  bool operator==(const Classification&) const = default;
};

Classification classify(const CheckResult& r);

}  // namespace health
