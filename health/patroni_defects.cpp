#include "health/patroni_defects.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cctype>

namespace health {

namespace {

// The known acknowledged-write-loss defects. Each entry was checked against
// Patroni's repository: the fix commit, and the first release tag that
// contains it (git tag --contains).
constexpr KnownDefect kDefects[] = {
    // etcd3's update_leader() wrote the leader key with a plain put, no
    // compare: a primary cut off from etcd long enough for its lease to
    // expire, once reconnected, took a new lease and overwrote the leader
    // key the other node had acquired meanwhile, took the primary role back,
    // and the new primary was demoted and rewound: every write it had
    // acknowledged in between was gone (seen in the namespace lab with
    // Debian 12's 3.0.2, asynchronous and synchronous_mode alike, see
    // tests/e2e/RESULTS.md). The unconditional put came with etcd3 support
    // (2.0.0, patroni#1162). Fixed by patroni#2689 ("make sure the leader
    // key isn't unconditionally overwritten", May 2023), completed by
    // patroni#2693 (a lease renewed after a TTL change), both first
    // released in 3.0.3.
    {"patroni#2689", Dcs::etcd3, {2, 0, 0}, {3, 0, 3},
     "a primary cut off from etcd that comes back overwrites the new leader key (no compare-and-set in "
     "update_leader) and takes the primary role back; every write the new primary acknowledged meanwhile is "
     "lost (patroni#2693 completes the fix)"},
};

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string to_string(const PatroniVersion& v) {
  return std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
}

std::optional<PatroniVersion> parse_patroni_version(std::string_view s) {
  unsigned parts[3] = {0, 0, 0};
  size_t i = 0, n = 0;
  while (n < 3) {
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view num = s.substr(start, i - start);
    if (!all_digits(num) || num.size() > 6) break;
    parts[n++] = static_cast<unsigned>(std::stoul(std::string(num)));
    // Another number follows only after a dot ("3.0.2.dev1": the patch is 2).
    if (n == 3 || i + 1 >= s.size() || s[i] != '.' || !std::isdigit(static_cast<unsigned char>(s[i + 1]))) break;
    ++i;
  }
  if (n < 2) return std::nullopt;
  return PatroniVersion{parts[0], parts[1], parts[2]};
}

const char* to_string(Dcs d) {
  switch (d) {
    case Dcs::unknown: return "unknown";
    case Dcs::etcd: return "etcd";
    case Dcs::etcd3: return "etcd3";
    case Dcs::consul: return "consul";
    case Dcs::zookeeper: return "zookeeper";
    case Dcs::exhibitor: return "exhibitor";
    case Dcs::kubernetes: return "kubernetes";
    case Dcs::raft: return "raft";
  }
  return "unknown";
}

Dcs parse_dcs(std::string_view section) {
  for (Dcs d : {Dcs::etcd, Dcs::etcd3, Dcs::consul, Dcs::zookeeper, Dcs::exhibitor, Dcs::kubernetes, Dcs::raft})
    if (section == to_string(d)) return d;
  return Dcs::unknown;
}

std::span<const KnownDefect> known_write_loss_defects() { return kDefects; }

std::vector<DefectMatch> write_loss_defects(const PatroniVersion& running, Dcs dcs) {
  std::vector<DefectMatch> out;
  for (const auto& d : kDefects) {
    if (running < d.introduced || !(running < d.fixed)) continue;
    if (dcs != Dcs::unknown && dcs != d.dcs) continue;
    out.push_back({&d, dcs == d.dcs});
  }
  return out;
}

std::string describe(const DefectMatch& m, const PatroniVersion& running) {
  const auto& d = *m.defect;
  std::string dcs = to_string(d.dcs);
  std::string out = "Patroni " + to_string(running) + (m.dcs_confirmed ? " with " + dcs + " has " : " has ") +
                    std::string(d.reference) + (m.dcs_confirmed ? "" : " if its DCS is " + dcs) + ": " +
                    std::string(d.what) + "; fixed in Patroni " + to_string(d.fixed) + ", upgrade every node";
  return out;
}

std::optional<std::string> patroni_version_from_status(std::string_view json_body) {
  boost::system::error_code ec;
  boost::json::parse_options opt;
  opt.max_depth = 16;
  const boost::json::value doc =
      boost::json::parse(boost::json::string_view(json_body.data(), json_body.size()), ec, {}, opt);
  if (ec || !doc.is_object()) return std::nullopt;
  const auto* p = doc.get_object().if_contains("patroni");
  if (!p || !p->is_object()) return std::nullopt;
  const auto* v = p->get_object().if_contains("version");
  if (!v || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

std::optional<uint64_t> primary_timeline_from_status(std::string_view json_body, std::string& why) {
  boost::system::error_code ec;
  boost::json::parse_options opt;
  opt.max_depth = 16;
  const boost::json::value doc =
      boost::json::parse(boost::json::string_view(json_body.data(), json_body.size()), ec, {}, opt);
  if (ec || !doc.is_object()) {
    why = "the reply is not a JSON object";
    return std::nullopt;
  }
  const auto& o = doc.get_object();
  const auto* role = o.if_contains("role");
  if (!role || !role->is_string()) {
    why = "no role in the reply";
    return std::nullopt;
  }
  if (role->get_string() != "primary" && role->get_string() != "master") {
    why = "role '" + std::string(role->get_string()) + "', not a primary's";
    return std::nullopt;
  }
  const auto* tl = o.if_contains("timeline");
  if (!tl) {
    why = "no timeline in the reply";
    return std::nullopt;
  }
  // PostgreSQL timelines start at 1 (TimeLineID is a uint32); a double,
  // a string, 0 or a negative number is not one.
  if (tl->is_int64() && tl->get_int64() >= 1 && tl->get_int64() <= UINT32_MAX)
    return static_cast<uint64_t>(tl->get_int64());
  if (tl->is_uint64() && tl->get_uint64() >= 1 && tl->get_uint64() <= UINT32_MAX) return tl->get_uint64();
  why = "timeline " + boost::json::serialize(*tl) + " is not a timeline number";
  return std::nullopt;
}

}  // namespace health
