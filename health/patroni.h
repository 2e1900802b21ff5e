// What Patroni's JSON says about the node behind a 200, for checks of its
// primary endpoints. Pure: no sockets, no logging.
//
// Why: Patroni 3.0 answers 200 on /primary (and /master, /read-write,
// /leader) for as long as it holds the leader key, whatever PostgreSQL is
// doing. After a crash of the primary's postmaster it keeps that 200 while
// PostgreSQL is down ("state": "unknown", then "crashed"), while it restarts
// it in recovery ("state": "starting"/"running", "role": "replica": it
// accepts connections but refuses writes) and until it promotes it again
// ("role": "master"). Measured on the namespace lab, see tests/e2e/RESULTS.md.
// Only the body tells, and Patroni sends it only in reply to GET
// (OPTIONS/HEAD get the status line alone).
#pragma once

#include <string>
#include <string_view>

#include "cfg/config.h"

namespace health {

// The check rule asks for Patroni's body to be judged: `expect_role:
// primary`, or `auto` with a path naming one of Patroni's primary endpoints
// (/primary, /master, /read-write, with or without a query string).
bool judges_primary_role(const cfg::Check& rule);
// The method actually sent: GET when the body is judged (Patroni sends no
// body to OPTIONS or HEAD), the configured one otherwise.
std::string method_sent(const cfg::Check& rule);

struct RoleVerdict {
  enum Kind {
    writable,      // "role": "master"/"primary" and "state": "running"
    not_primary,   // another role (replica, standby_leader, demoted...):
                   // PostgreSQL refuses writes; the node's own answer
    not_running,   // a primary role but PostgreSQL is not running (crashed,
                   // starting, restarting, unknown): may be a blip
    no_verdict,    // not Patroni's JSON (auto accepts the status alone)
  };
  Kind kind = no_verdict;
  std::string detail;  // "role replica, state running", "body is not JSON"
};

// `truncated`: the body was longer than the checker keeps.
RoleVerdict judge_primary_body(std::string_view body, bool truncated);

}  // namespace health
