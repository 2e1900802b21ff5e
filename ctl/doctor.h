// `vipproxy doctor`: preflight checks with one verdict line each. The
// verdict functions are pure (facts in, verdicts out; unit-tested); the
// probes in doctor_probes.cpp gather the facts and stay thin.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "cfg/config.h"
#include "health/patroni_defects.h"
#include "vrrp/vips.h"

namespace ctl {

enum class Level { ok, warn, fail };
const char* to_string(Level l);

struct Verdict {
  Level level = Level::ok;
  std::string check;   // "capabilities", "interface enp0s3", ...
  std::string reason;
};

std::string format_verdict(const Verdict& v);    // "OK    check: reason"
int exit_code(const std::vector<Verdict>& vs);  // 1 if any FAIL

// ---- capabilities ----
// The CapEff line of /proc/self/status (hex); nullopt if absent.
std::optional<uint64_t> parse_capeff(const std::string& proc_status);
// What the daemon keeps after start for this file (privileges::needed: the
// same decision, so doctor and daemon cannot disagree) against what this
// process holds: one OK line for those held, one FAIL line naming each
// missing one with its reason.
std::vector<Verdict> capability_verdicts(const cfg::Config& c, uint64_t capeff, bool is_root_uid);

// ---- interfaces ----
struct LinkFacts {
  bool exists = false;
  bool admin_up = false;          // IFF_UP
  std::string operstate;          // "up", "down", "unknown" (loopback, some virtual links)
};
Verdict interface_verdict(const std::string& ifname, const LinkFacts& f);

// ---- sysctls ----
struct SysctlFacts {
  std::optional<int> ip_nonlocal_bind;         // net.ipv4.ip_nonlocal_bind
  std::optional<int> ipv6_nonlocal_bind;       // net.ipv6.ip_nonlocal_bind
  std::optional<int> arp_ignore_all, arp_ignore_if;
  std::optional<int> arp_announce_all, arp_announce_if;
};
// Proxy listeners bound to a VIP (not 0.0.0.0) need ip_nonlocal_bind=1 on the
// BACKUP node, where the address is absent.
std::vector<std::string> listeners_on_vips(const cfg::Config& c);
std::vector<Verdict> sysctl_verdicts(const cfg::Config& c, const std::string& ifname, const SysctlFacts& f);

// ---- protocol 112 ----
struct Advert {
  std::string source;
  unsigned version = 0, vrid = 0, priority = 0;
  // The virtual addresses it lists (IPv4, as inet_ntop writes them);
  // nullopt: not read. On our VRID a list other than ours, from anyone but
  // the address owner (priority 255), is another VRRP cluster (RFC 5798
  // §7.1): vipproxy ignores it, and so must the verdict.
  std::optional<std::vector<std::string>> addresses = std::nullopt;
};
struct AdvertFacts {
  bool listened = false;      // false: raw socket not allowed (reason in error)
  std::string error;
  double seconds = 0;
  std::vector<Advert> heard;  // from other hosts (own addresses filtered out)
};
Verdict advert_verdict(const cfg::VrrpInstance& inst, const AdvertFacts& f);

// ---- foreign routers the running daemon heard (its /status counters) ----
// Adverts on our VRID that the daemon drops as another router's
// configuration (vrrp/foreign.h): another address list (another cluster on
// the same VRID), another VRRPv2 advert_int, another version.
struct ForeignRouterFact {
  std::string source, reason;  // reason: address_mismatch, adver_int_mismatch, ...
  unsigned version = 0, priority = 0, advert_int_ms = 0;
  std::vector<std::string> addresses;
  uint64_t adverts = 0;
  double last_seen_seconds_ago = 0;
};
struct InstanceCounterFacts {
  bool found = false;  // the instance is in the daemon's /status
  uint64_t address_mismatch = 0, adver_int_mismatch = 0, version_mismatch = 0, owner_address_mismatch = 0;
  // Adverts from our own source address (drops.own_address): our adverts
  // reflected by the network, or another router using our address.
  uint64_t own_address = 0;
  std::vector<ForeignRouterFact> routers;
};
struct DaemonFacts {
  bool reached = false;     // /status answered 200 with JSON
  std::string where;        // "http://127.0.0.1:8405/status"
  std::string error;        // why not
  std::string status_json;  // the body
  unsigned http_status = 0; // its answer when not 200 (401: no or a wrong token)
};
// The named instance's counters in a /status document (daemon/admin.cpp).
InstanceCounterFacts instance_counters(const std::string& status_json, const std::string& instance);
Verdict foreign_routers_verdict(const cfg::VrrpInstance& inst, const DaemonFacts& f);

// ---- VIPs already on their devices (vrrp/vips.h claim_at_start) ----
// The daemon refuses to start an instance whose VIP is an address the host
// already has and did not get from vipproxy (the host's own address, RFC
// 5798's address owner, keepalived still holding it): said here first.
struct VipFacts {
  std::string device;
  std::optional<std::vector<vrrp::vips::Entry>> entries;  // nullopt: not read
  std::string error;                                      // why not
  bool held_by_daemon = false;  // the running daemon's /status: installed by it
  // The same address on other devices of this host, less what the running
  // daemon holds there (vrrp::vips::taken_elsewhere): the start refuses it.
  std::vector<vrrp::vips::Elsewhere> elsewhere;
};
Verdict vip_address_verdict(const cfg::VirtualAddress& va, const VipFacts& f);
// Whether the daemon's /status (DaemonFacts::status_json) shows `address`
// installed on `device` by one of its instances.
bool daemon_holds_vip(const std::string& status_json, const std::string& address, const std::string& device);

// ---- The data path of each proxy (from the config alone) ----
// A WARN per proxy set to `data_path: kernel`: experimental, run under load
// on 6.18 only (6.1's and 6.8's tests pass in an emulated guest), where it forwarded
// duplicated bytes until its program cut off retransmitted overlaps (README,
// "Kernel data path"). Nothing for the other paths.
std::vector<Verdict> data_path_verdicts(const cfg::Config& c);

// ---- Patroni REST (the configured check) ----
struct CheckProbe {
  std::string proxy, backend, target;  // target: "OPTIONS http://host:8008/primary"
  bool reached = false;
  unsigned http_status = 0;  // 0 for a tcp check
  std::string error;
  double latency_ms = 0;
};
std::vector<Verdict> patroni_verdicts(const cfg::Config& c, const std::vector<CheckProbe>& probes);

// ---- The TLS checks' client keys (check.tls.key_file, or cert_file when it
// holds the key too, HAProxy's `crt`): one a user of this host other than
// its owner and group can read lets anyone here present the certificate a
// Patroni with `verify_client: required` trusts; a WARN per such key, an OK
// per other one. `mode_of` gives a file's permission bits (st_mode & 07777),
// nothing when it cannot be read (the check's own line says why then).
std::vector<Verdict> tls_key_verdicts(const cfg::Config& c,
                                      const std::function<std::optional<unsigned>(const std::string&)>& mode_of);

// ---- Patroni version (GET /patroni on each backend's check host and port) ----
// Known acknowledged-write-loss defects (health/patroni_defects.h) depend on
// the version, which Patroni's REST API gives, and on the DCS, which it does
// not: that comes from patroni.yml when doctor can read it.
struct PatroniVersionProbe {
  std::string proxy, backend, target;  // target: "GET http://host:8008/patroni"
  bool reached = false;
  unsigned http_status = 0;
  std::string body, error;
};
struct DcsFacts {
  health::Dcs dcs = health::Dcs::unknown;
  std::string source;  // the patroni.yml it came from
  std::string error;   // why it is unknown
};
// The DCS section of a Patroni config (etcd3:, etcd:, consul:, ...);
// unknown when there is none or several, or the text is not YAML.
health::Dcs dcs_from_patroni_yaml(const std::string& yaml_text);
std::vector<Verdict> patroni_version_verdicts(const std::vector<PatroniVersionProbe>& probes, const DcsFacts& dcs);

// ---- etcd members ----
struct EtcdFacts {
  std::vector<std::string> hosts;    // from patroni.yml's etcd/etcd3 section
  std::string source;                // where hosts came from
  std::optional<int> members;        // from the members API
  std::string error;
};
Verdict etcd_verdict(const EtcdFacts& f);
// etcd/etcd3 "hosts" (list or comma string), "host", "url"/"urls" of a Patroni config.
std::vector<std::string> etcd_hosts_from_patroni_yaml(const std::string& yaml_text);
// Member count from /v3/cluster/member/list or /v2/members JSON.
std::optional<int> count_etcd_members(const std::string& json_text);

// ---- the running daemon's admin endpoint ----
struct AdminFacts {
  bool enabled = true;          // admin.enabled of the config
  std::string address;          // "127.0.0.1:8405"
  std::string token_source;     // where the token came from ("" : none sent)
  bool reached = false;         // an HTTP answer came
  unsigned http_status = 0;
  std::string error;            // why not reached
  std::string version, node;    // from /status when 200
  bool not_json = false;
  bool connected = false;       // not reached, but something accepted the connection
};
// OK when /status answers; WARN when nothing answers (normal before the
// first start) or the token is missing or refused (and how to give it).
Verdict admin_verdict(const AdminFacts& f);

// ---- the run ----
struct DoctorOptions {
  std::string config = "/etc/vipproxy/vipproxy.yaml";
  std::string patroni_config;  // empty: /etc/patroni/patroni.yml if readable
  std::vector<std::string> etcd;  // --etcd overrides
  bool listen_adverts = true;
  double advert_seconds = 0;  // 0: 3 x advert_int
  std::string admin;                      // empty: admin.listen of the config
  std::optional<std::string> token_file;  // else $VIPPROXY_TOKEN, else admin.token
};
// Runs every probe, printing each verdict as it is reached.
std::vector<Verdict> run_doctor(const DoctorOptions& o, std::ostream& out);
// args[0] is "doctor". 1 if any verdict is FAIL, 2 on a usage error.
int run_doctor_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace ctl
