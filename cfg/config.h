// The validated configuration: plain structs, built once by cfg::load() before
// any socket is opened. Nothing outside cfg/ parses YAML; everything else
// reads these structs. Who holds what: the daemon keeps the whole Config by
// value, read and replaced only on its control thread (a reload loads a new
// Config, prepares everything from it, then assigns it). Each proxy's
// settings are copied into an immutable proxy::ProxyRuntime generation that
// workers and sessions share through a shared_ptr, so a session keeps the
// settings it started with across reloads; each VRRP engine keeps its own
// copy of its VrrpInstance, replaced in place by vrrp::Service::reload.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cfg {

using Duration = std::chrono::milliseconds;

// "host:port": host is an IPv4 literal, an IPv6 literal in brackets
// ("[::1]:5432") or a DNS name; resolved when the daemon starts.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
  bool operator==(const Endpoint&) const = default;
};

enum class CheckType { http, tcp };
// Whether a 200 must also show, in Patroni's JSON body, a running primary
// (health/patroni.h says why). automatic: for Patroni's primary endpoints.
enum class ExpectRole { automatic, primary, any };

struct TlsCheck {
  bool enabled = false;
  bool verify = true;          // verify the server certificate (chain + name)
  std::string ca_file;         // empty: system default store
  std::string server_name;     // SNI / name to verify; empty: backend host
  std::string cert_file;       // client certificate chain (PEM); empty: none
  std::string key_file;        // its key (PEM); empty: in cert_file (HAProxy `crt`)
  bool operator==(const TlsCheck&) const = default;
};

// What to send and what to expect (the "check rule"). Scheduling lives in
// interval/fast_interval/rise/fall, interpreted by health::CheckSchedule.
struct Check {
  CheckType type = CheckType::http;
  std::optional<uint16_t> port;  // empty: the backend's own port
  std::string method = "OPTIONS"; // Patroni docs recommend OPTIONS/HEAD (patroni#2278)
  std::string path = "/primary";
  unsigned expect_status = 200;
  Duration interval{2000};
  Duration fast_interval{500};   // while a backend is changing state
  Duration timeout{1000};
  unsigned rise = 2;
  unsigned fall = 3;
  // A well-formed answer with another status (Patroni's 503 on /primary:
  // "I am not the leader") is a statement, not a glitch: it takes an UP
  // backend down at once. `fall` still smooths layer-4 failures (timeouts,
  // refused connections), which is what flaps.
  bool down_on_status = true;
  ExpectRole expect_role = ExpectRole::automatic;
  TlsCheck tls;
  bool operator==(const Check&) const = default;
};

struct Backend {
  std::string name;
  Endpoint address;
  std::optional<uint16_t> check_port;  // overrides check.port for this backend
  bool operator==(const Backend&) const = default;
};

enum class Balance { first, roundrobin, leastconn };

// How an established session's bytes move (README, "Data path").
// automatic: splice for now; kernel: opt-in, see kKernelDataPathCaveat.
enum class DataPath { automatic, kernel, splice, copy };

// Why data_path kernel is opt-in, as the daemon's start-up warning and
// `vipproxy doctor` say it (README, "Kernel data path", issue 11).
inline constexpr const char* kKernelDataPathCaveat =
    "data_path kernel is experimental: run under load on kernel 6.18 only (Debian 12's 6.1 and Ubuntu 24.04's 6.8 "
    "passed its tests in an emulated guest), where it forwarded duplicated bytes after a "
    "retransmission until its program learnt to cut them off, and buffered a fast sender's bytes without bound "
    "on a session it took back until its send queues made room (README, \"Kernel data path\"); use auto "
    "(splice) in front of a catalog";

struct TcpKeepalive {
  bool enabled = true;
  Duration idle{30000};     // TCP_KEEPIDLE
  Duration interval{10000}; // TCP_KEEPINTVL
  unsigned count = 3;       // TCP_KEEPCNT
  bool operator==(const TcpKeepalive&) const = default;
};

struct Proxy {
  std::string name;
  Endpoint listen;
  Check check;
  Balance balance = Balance::first;
  std::vector<Backend> backends;
  Duration connect_timeout{5000};
  // A new connection arriving while no backend is eligible waits this long
  // for one to appear (0: refuse at once).
  Duration queue_timeout{10000};
  // 0: no idle timeout (the default: the Bacula Director keeps idle catalog
  // sessions for hours; dead peers are found by keepalive instead).
  Duration idle_timeout{0};
  // A half-closed session (one side has sent its FIN) is closed after this
  // long without I/O on the client side (client_fin_timeout) or on the
  // backend side (server_fin_timeout): HAProxy's `timeout client-fin` and
  // `timeout server-fin`. Without them, idle_timeout 0 would let a peer
  // that half-closed and then went quiet hold a maxconn slot forever. 0: no
  // bound.
  Duration client_fin_timeout{3'600'000};
  Duration server_fin_timeout{3'600'000};
  unsigned maxconn = 10000;
  // Close every session of a backend as soon as it stops being eligible, so
  // clients reconnect to the new primary instead of talking to a demoted one.
  bool shutdown_sessions_on_down = true;
  TcpKeepalive keepalive;
  Duration tcp_user_timeout{30000}; // 0: kernel default
  DataPath data_path = DataPath::automatic;
  // One log line per session as it ends (HAProxy's `option tcplog`). Off by
  // default: a client that connects per query would fill the journal.
  bool log_sessions = false;
  bool operator==(const Proxy&) const = default;
};

// Where a backend's check goes: its host, at its check_port, else the
// proxy's check.port, else its own port.
Endpoint check_target(const Proxy& p, std::size_t backend);

struct Admin {
  bool enabled = true;
  Endpoint listen{"127.0.0.1", 8405};
  std::string token;  // empty: no token required
  bool operator==(const Admin&) const = default;
};

// ---- VRRP (RFC 3768 / RFC 5798 / RFC 9568), keepalived vocabulary ----

enum class VrrpState { backup, master };
enum class AuthType { none, pass };
enum class ChecksumForm { keepalived, rfc9568 };  // VRRPv3 IPv4 only

struct VirtualAddress {
  std::string address;      // IPv4 or IPv6 literal
  unsigned prefix_len = 32; // default /32 (/128 for IPv6), like keepalived
  std::string device;       // empty: the instance's interface
  std::string label;        // optional IPv4 label ("eth0:vip")
  bool is_ipv6 = false;
  // Where the file gives it ("vipproxy.yaml:14:9: vrrp[0].virtual_ipaddresses[0]"),
  // for errors found only at start (vrrp/engine.cpp: an address the host
  // already has). Not part of the value: a VIP moved to another line of the
  // file is the same VIP.
  std::string where;
  bool operator==(const VirtualAddress& o) const {
    return address == o.address && prefix_len == o.prefix_len && device == o.device && label == o.label &&
           is_ipv6 == o.is_ipv6;
  }
};

struct TrackScript {
  std::string name;
  std::string command;
  Duration interval{2000};
  Duration timeout{2000};
  unsigned rise = 1;
  unsigned fall = 1;
  int weight = 0;  // 0: FAULT while failing; >0 added while OK; <0 subtracted while failing
  std::string user; // run as this user (empty: the daemon's user)
  bool operator==(const TrackScript&) const = default;
};

struct TrackInterface {
  std::string name;
  int weight = 0;
  bool operator==(const TrackInterface&) const = default;
};

struct TrackProxy {
  std::string name;
  int weight = 0;
  bool operator==(const TrackProxy&) const = default;
};

struct Track {
  std::vector<TrackProxy> proxies;
  std::vector<TrackScript> scripts;
  std::vector<TrackInterface> interfaces;
  bool operator==(const Track&) const = default;
};

struct Notify {
  std::string master, backup, fault, stop, any;
  // Every hook has a bounded life: after `timeout` its process group is
  // killed. At most `max_running` hooks of the instance run at once; the
  // others wait in transition order (vrrp::NotifyQueue says what happens
  // past that). 20 s: a hook hung at SIGTERM is killed, and the daemon has
  // exited, within the packaged unit's TimeoutStopSec (30 s).
  Duration timeout{20000};
  unsigned max_running = 1;
  bool operator==(const Notify&) const = default;
};

struct Garp {
  Duration master_delay{5000};  // second burst after this delay (0: none)
  unsigned master_repeat = 5;   // ARPs per burst
  Duration master_refresh{0};   // periodic refresh while master (0: none)
  Duration interval{0};         // gap between ARPs of one burst
  bool operator==(const Garp&) const = default;
};

struct VrrpInstance {
  std::string name;
  std::string interface;
  VrrpState state = VrrpState::backup;  // starting hint only
  unsigned virtual_router_id = 0;
  unsigned priority = 100;
  unsigned version = 2;
  Duration advert_int{1000};
  bool preempt = true;
  Duration preempt_delay{0};
  AuthType auth_type = AuthType::none;
  std::string auth_password;  // never logged, never in /status
  std::vector<VirtualAddress> virtual_ipaddresses;
  std::string unicast_src_ip;
  std::vector<std::string> unicast_peers;
  bool unicast = false;  // true when unicast_peers was given
  ChecksumForm checksum = ChecksumForm::keepalived;
  Track track;
  Notify notify;
  Garp garp;
  bool operator==(const VrrpInstance&) const = default;
};

enum class LogFormat { text, journal };

struct Config {
  std::string source;  // file it came from, for messages
  std::string node;    // this node's name (status, logs)
  unsigned threads = 0; // 0: one per core
  // SCHED_RR priority of the control thread (VRRP, checks, admin), 1-99;
  // 0: the normal scheduler. keepalived's vrrp_rt_priority (daemon/realtime.h).
  unsigned vrrp_rt_priority = 0;
  std::string log_level = "info";
  // On SIGTERM: stop accepting, let established sessions finish, close the
  // rest after this long (HAProxy's hard-stop-after). 0: close at once.
  Duration hard_stop_after{5000};
  Admin admin;
  std::vector<Proxy> proxies;
  std::vector<VrrpInstance> vrrp;
  bool operator==(const Config&) const = default;
};

}  // namespace cfg
