// Known Patroni defects that lose writes a client saw acknowledged, by
// Patroni version and DCS. No frontend can prevent them (the writes are
// lost behind it), but vipproxy talks to every node's Patroni, so the daemon
// (at start) and `vipproxy doctor` can say so. Pure: no sockets, no logging.
//
// The table lives in patroni_defects.cpp, one entry per defect, each with
// the upstream issue/PR numbers and the first fixed release (checked against
// Patroni's git history and release tags). Keep it to acknowledged-write
// loss; availability problems belong elsewhere.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace health {

struct PatroniVersion {
  unsigned major = 0, minor = 0, patch = 0;
  auto operator<=>(const PatroniVersion&) const = default;
};
std::string to_string(const PatroniVersion& v);
// "3.0.2"; a suffix after the numbers ("4.0.0rc1", "3.0.2.dev1") is ignored;
// "3.1" is 3.1.0. nullopt for anything not starting with N.N.
std::optional<PatroniVersion> parse_patroni_version(std::string_view s);

// Patroni's DCS, named like the patroni.yml section that configures it.
// Patroni's REST API does not say which one it uses.
enum class Dcs { unknown, etcd, etcd3, consul, zookeeper, exhibitor, kubernetes, raft };
const char* to_string(Dcs d);
// "etcd3" -> Dcs::etcd3; unknown for anything else.
Dcs parse_dcs(std::string_view section);

struct KnownDefect {
  std::string_view reference;  // "patroni#2689": where it is described and fixed
  Dcs dcs;                     // the DCS it needs
  PatroniVersion introduced;   // first affected release
  PatroniVersion fixed;        // first release with the fix
  std::string_view what;       // what happens, one sentence
};
std::span<const KnownDefect> known_write_loss_defects();

struct DefectMatch {
  const KnownDefect* defect = nullptr;
  bool dcs_confirmed = false;  // false: the DCS is unknown, the defect applies if it is defect->dcs
};
// The defects that apply to a running version and DCS. With Dcs::unknown
// every defect of the version matches, unconfirmed.
std::vector<DefectMatch> write_loss_defects(const PatroniVersion& running, Dcs dcs);

// One line naming the defect, what it does and the fixed version:
// "Patroni 3.0.2 with etcd3 has patroni#2689: ...; fixed in 3.0.3, upgrade every node"
std::string describe(const DefectMatch& m, const PatroniVersion& running);

// patroni.version from Patroni's status JSON (GET /patroni, or any GET of
// its health endpoints); nullopt if absent or not JSON.
std::optional<std::string> patroni_version_from_status(std::string_view json_body);

// The PostgreSQL timeline a primary's Patroni reports in its status JSON
// (GET /patroni: "role" "primary", or "master" before Patroni 4.0, and
// "timeline": N; real replies in tests/fixtures/patroni/). nullopt, with `why` set to one line
// saying what was wrong, for anything else: not JSON, another role (a
// replica's reply: the node stepped down since its check passed), no
// timeline or one that is not a positive integer. The daemon compares them
// when two backends of a `first` proxy pass the check at once
// (proxy/balance.h, elect_first_by_timeline).
std::optional<uint64_t> primary_timeline_from_status(std::string_view json_body, std::string& why);

}  // namespace health
