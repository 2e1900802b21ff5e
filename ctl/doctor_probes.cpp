// The thin probes of `vipproxy doctor`: they gather facts for the pure
// verdicts in doctor_verdicts.cpp and decide nothing themselves.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "cfg/load.h"
#include "ctl/admin_client.h"
#include "ctl/doctor.h"
#include "ctl/http.h"
#include "health/checker.h"
#include "health/status.h"
#include "vrrp/kernel.h"
#include "vrrp/netlink.h"

namespace ctl {

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::optional<int> read_int(const std::string& path) {
  auto s = read_file(path);
  if (!s) return std::nullopt;
  try {
    return std::stoi(*s, nullptr, 0);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

LinkFacts probe_link(const std::string& ifname) {
  LinkFacts f;
  std::string base = "/sys/class/net/" + ifname;
  auto flags = read_int(base + "/flags");
  if (!flags) return f;
  f.exists = true;
  f.admin_up = (*flags & IFF_UP) != 0;
  if (auto s = read_file(base + "/operstate")) {
    f.operstate = *s;
    while (!f.operstate.empty() && (f.operstate.back() == '\n' || f.operstate.back() == ' ')) f.operstate.pop_back();
  }
  return f;
}

SysctlFacts probe_sysctls(const std::string& ifname) {
  SysctlFacts f;
  f.ip_nonlocal_bind = read_int("/proc/sys/net/ipv4/ip_nonlocal_bind");
  f.ipv6_nonlocal_bind = read_int("/proc/sys/net/ipv6/ip_nonlocal_bind");
  f.arp_ignore_all = read_int("/proc/sys/net/ipv4/conf/all/arp_ignore");
  f.arp_announce_all = read_int("/proc/sys/net/ipv4/conf/all/arp_announce");
  if (!ifname.empty()) {
    f.arp_ignore_if = read_int("/proc/sys/net/ipv4/conf/" + ifname + "/arp_ignore");
    f.arp_announce_if = read_int("/proc/sys/net/ipv4/conf/" + ifname + "/arp_announce");
  }
  return f;
}

std::set<std::string> local_addresses() {
  std::set<std::string> out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (auto* p = ifa; p; p = p->ifa_next) {
    if (!p->ifa_addr || p->ifa_addr->sa_family != AF_INET) continue;
    char b[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(p->ifa_addr)->sin_addr, b, sizeof b);
    out.insert(b);
  }
  freeifaddrs(ifa);
  return out;
}

// Listens on an IPv4 raw socket for protocol 112 for `seconds`, joined to
// 224.0.0.18 on every VRRP interface. IPv6 instances are not listened for.
AdvertFacts listen_adverts(const cfg::Config& c, double seconds) {
  AdvertFacts f;
  int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, 112);
  if (fd < 0) {
    f.error = std::string("raw socket for protocol 112 not allowed: ") + std::strerror(errno) + " (needs CAP_NET_RAW)";
    return f;
  }
  std::set<std::string> joined;
  for (const auto& v : c.vrrp) {
    if (!joined.insert(v.interface).second) continue;
    ip_mreqn m{};
    inet_pton(AF_INET, "224.0.0.18", &m.imr_multiaddr);
    m.imr_ifindex = static_cast<int>(if_nametoindex(v.interface.c_str()));
    if (m.imr_ifindex) (void)::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m);
  }
  f.listened = true;
  f.seconds = seconds;
  auto own = local_addresses();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    unsigned char buf[2048];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 20) continue;
    size_t ihl = (buf[0] & 0x0f) * 4u;
    if (static_cast<size_t>(n) < ihl + 4 || buf[9] != 112) continue;
    char src[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, buf + 12, src, sizeof src);
    if (own.count(src)) continue;
    Advert a;
    a.source = src;
    a.version = buf[ihl] >> 4;
    a.vrid = buf[ihl + 1];
    a.priority = buf[ihl + 2];
    if ((buf[ihl] & 0x0f) != 1) continue;  // type 1: advertisement
    // The address list follows the 8-byte header (RFC 3768 §5.1, RFC 5798
    // §5.1): read it when the datagram is long enough to hold it.
    const size_t count = buf[ihl + 3];
    if (static_cast<size_t>(n) >= ihl + 8 + 4 * count) {
      std::vector<std::string> addrs;
      for (size_t i = 0; i < count; ++i) {
        char b[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, buf + ihl + 8 + 4 * i, b, sizeof b);
        addrs.emplace_back(b);
      }
      a.addresses = std::move(addrs);
    }
    f.heard.push_back(a);
  }
  ::close(fd);
  return f;
}

// GET /status of the running daemon: at the address and with the token the
// admin endpoint line used (--admin, else admin.listen of the config;
// --token-file, else $VIPPROXY_TOKEN, else admin.token: resolve_token). It
// used its own rules (admin.listen and admin.token, then $VIPPROXY_TOKEN,
// never --admin nor --token-file): with the token in a file, doctor said
// "OK admin endpoint ... answers" and then "vipproxy does not answer
// (HTTP 401)" for every instance, and left the foreign routers unchecked.
DaemonFacts read_daemon_status(const cfg::Config& c, const DoctorOptions& o) {
  DaemonFacts f;
  const std::string address = o.admin.empty() ? admin_address(c.admin) : o.admin;
  f.where = "http://" + address + "/status";
  if (!c.admin.enabled && o.admin.empty()) {
    f.error = "admin.enabled is false";
    return f;
  }
  std::pair<std::string, unsigned short> hp;
  Token token;
  try {
    hp = split_host_port(address, 8405);
    token = resolve_token(o.token_file, &c, o.config);
  } catch (const std::exception& e) {
    f.error = e.what();
    return f;
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.value.empty()) headers.emplace_back("Authorization", "Bearer " + token.value);
  auto r = http_request(hp.first, hp.second, "GET", "/status", {}, headers, std::chrono::milliseconds(2000));
  if (!r.ok) {
    f.error = r.error;
    return f;
  }
  if (r.status != 200) {
    f.http_status = r.status;
    f.error = "HTTP " + std::to_string(r.status);
    return f;
  }
  f.reached = true;
  f.status_json = std::move(r.body);
  return f;
}

std::string tcp_connect(const std::string& host, unsigned short port, std::chrono::milliseconds timeout,
                        double& latency_ms) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::resolver r(io);
  asio::ip::tcp::socket s(io);
  std::string err = "timed out";
  auto start = std::chrono::steady_clock::now();
  r.async_resolve(host, std::to_string(port), [&](boost::system::error_code ec, asio::ip::tcp::resolver::results_type rs) {
    if (ec) { err = "resolve: " + ec.message(); return; }
    asio::async_connect(s, rs, [&](boost::system::error_code ec, const asio::ip::tcp::endpoint&) {
      err = ec ? "connect: " + ec.message() : "";
      latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    });
  });
  io.run_for(timeout);
  return err;
}

// A TLS check, and the GET /patroni beside it, are asked through the
// daemon's own check code (health::check_once, health::fetch_once): the same
// ca_file, server_name, verify and client certificate as the daemon's checks,
// so doctor's verdict is theirs. The host is resolved here, once, as the
// daemon does at start. `path` empty: the check itself.
struct OnceReply {
  bool reached = false;      // a well-formed HTTP reply came
  unsigned http_status = 0;
  std::string body, error;
  double latency_ms = 0;
};

OnceReply ask_once(const cfg::Check& rule, const cfg::Endpoint& target, const std::string& path,
                   std::chrono::milliseconds timeout) {
  namespace asio = boost::asio;
  OnceReply out;
  asio::io_context io;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(target.host, ec);
  if (ec) {
    asio::ip::tcp::resolver r(io);
    auto found = r.resolve(target.host, std::to_string(target.port), ec);
    if (ec || found.empty()) {
      out.error = "resolve " + target.host + ": " + (ec ? ec.message() : std::string("no address"));
      return out;
    }
    address = found.begin()->endpoint().address();
  }
  std::function<void()> cancel;
  bool done = false;
  auto report = [&](const health::CheckResult& r, const std::string& body) {
    done = true;
    out.http_status = r.http_status;
    out.reached = r.http_status != 0;
    out.body = body;
    out.latency_ms = static_cast<double>(r.latency.count()) / 1000.0;
    if (!out.reached) out.error = health::describe(r);
    if (cancel) cancel();  // ends the wait for the server's close
  };
  cancel = path.empty() ? health::check_once(io, rule, target, address, report)
                        : health::fetch_once(io, rule, target, address, path, timeout, report);
  // The attempt's own timeout ends it; the margin covers the close after it.
  io.run_for(std::max(timeout, rule.timeout) + std::chrono::seconds(2));
  if (!done) out.error = "no reply within " + std::to_string(std::max(timeout, rule.timeout).count()) + " ms";
  return out;
}

std::vector<CheckProbe> probe_checks(const cfg::Config& c) {
  std::vector<CheckProbe> out;
  for (const auto& p : c.proxies) {
    for (std::size_t bi = 0; bi < p.backends.size(); ++bi) {
      const auto& b = p.backends[bi];
      CheckProbe pr;
      pr.proxy = p.name;
      pr.backend = b.name;
      unsigned short port = b.check_port ? *b.check_port : p.check.port ? *p.check.port : b.address.port;
      std::string hp = (b.address.host.find(':') != std::string::npos ? "[" + b.address.host + "]" : b.address.host) +
                       ":" + std::to_string(port);
      auto timeout = std::max(p.check.timeout, cfg::Duration(1000));
      if (p.check.type == cfg::CheckType::tcp) {
        pr.target = "tcp " + hp;
        std::string e = tcp_connect(b.address.host, port, timeout, pr.latency_ms);
        pr.reached = e.empty();
        pr.error = e;
      } else if (p.check.tls.enabled) {
        pr.target = p.check.method + " https://" + hp + p.check.path;
        auto r = ask_once(p.check, cfg::check_target(p, bi), "", timeout);
        pr.reached = r.reached;
        pr.http_status = r.http_status;
        pr.error = r.error;
        pr.latency_ms = r.latency_ms;
      } else {
        pr.target = p.check.method + " http://" + hp + p.check.path;
        auto r = http_request(b.address.host, port, p.check.method, p.check.path, {}, {}, timeout);
        pr.reached = r.ok;
        pr.http_status = r.status;
        pr.error = r.error;
        pr.latency_ms = r.latency.count() / 1000.0;
      }
      out.push_back(std::move(pr));
    }
  }
  return out;
}

// GET /patroni once per distinct check host and port of the http checks.
std::vector<PatroniVersionProbe> probe_patroni_versions(const cfg::Config& c) {
  std::vector<PatroniVersionProbe> out;
  std::set<std::string> seen;
  for (const auto& p : c.proxies) {
    if (p.check.type != cfg::CheckType::http) continue;
    for (std::size_t bi = 0; bi < p.backends.size(); ++bi) {
      const auto& b = p.backends[bi];
      unsigned short port = b.check_port ? *b.check_port : p.check.port ? *p.check.port : b.address.port;
      std::string hp = (b.address.host.find(':') != std::string::npos ? "[" + b.address.host + "]" : b.address.host) +
                       ":" + std::to_string(port);
      if (!seen.insert(hp).second) continue;
      PatroniVersionProbe pr;
      pr.proxy = p.name;
      pr.backend = b.name;
      if (p.check.tls.enabled) {
        pr.target = "GET https://" + hp + "/patroni";
        auto r = ask_once(p.check, cfg::check_target(p, bi), "/patroni", cfg::Duration(2000));
        pr.reached = r.reached;
        pr.http_status = r.http_status;
        pr.body = std::move(r.body);
        pr.error = r.error;
      } else {
        pr.target = "GET http://" + hp + "/patroni";
        auto r = http_request(b.address.host, port, "GET", "/patroni", {}, {},
                              std::max(p.check.timeout, cfg::Duration(2000)));
        pr.reached = r.ok;
        pr.http_status = r.status;
        pr.body = std::move(r.body);
        pr.error = r.error;
      }
      out.push_back(std::move(pr));
    }
  }
  return out;
}

DcsFacts probe_dcs(const DoctorOptions& o) {
  DcsFacts f;
  std::string path = o.patroni_config.empty() ? "/etc/patroni/patroni.yml" : o.patroni_config;
  auto text = read_file(path);
  if (!text) {
    f.error = "cannot read " + path;
    return f;
  }
  f.dcs = dcs_from_patroni_yaml(*text);
  f.source = path;
  if (f.dcs == health::Dcs::unknown) f.error = "no single DCS section in " + path;
  return f;
}

EtcdFacts probe_etcd(const DoctorOptions& o) {
  EtcdFacts f;
  if (!o.etcd.empty()) {
    f.hosts = o.etcd;
    f.source = "--etcd";
  } else {
    std::string path = o.patroni_config.empty() ? "/etc/patroni/patroni.yml" : o.patroni_config;
    auto text = read_file(path);
    if (!text) {
      f.error = "cannot read " + path;
      return f;
    }
    f.hosts = etcd_hosts_from_patroni_yaml(*text);
    f.source = path;
    if (f.hosts.empty()) {
      f.error = "no etcd/etcd3 hosts in " + path;
      return f;
    }
  }
  for (const auto& h : f.hosts) {
    std::pair<std::string, unsigned short> hp;
    try {
      hp = split_host_port(h, 2379);
    } catch (const std::exception& e) {
      f.error = e.what();
      continue;
    }
    auto r = http_request(hp.first, hp.second, "POST", "/v3/cluster/member/list", "{}", {},
                          std::chrono::milliseconds(2000));
    if (r.ok && r.status == 200) {
      if ((f.members = count_etcd_members(r.body))) {
        f.hosts.erase(std::remove(f.hosts.begin(), f.hosts.end(), h), f.hosts.end());
        f.hosts.insert(f.hosts.begin(), h);
        return f;
      }
    }
    auto r2 = http_request(hp.first, hp.second, "GET", "/v2/members", {}, {}, std::chrono::milliseconds(2000));
    if (r2.ok && r2.status == 200 && (f.members = count_etcd_members(r2.body))) {
      f.hosts.erase(std::remove(f.hosts.begin(), f.hosts.end(), h), f.hosts.end());
      f.hosts.insert(f.hosts.begin(), h);
      return f;
    }
    f.error = h + ": " + (r.ok ? "HTTP " + std::to_string(r.status) : r.error);
  }
  return f;
}

AdminFacts probe_admin(const cfg::Config& c, const DoctorOptions& o, std::ostream& out) {
  AdminFacts f;
  f.enabled = c.admin.enabled;
  if (!f.enabled && o.admin.empty()) return f;
  f.enabled = true;
  f.address = o.admin.empty() ? admin_address(c.admin) : o.admin;
  Token t;
  try {
    t = resolve_token(o.token_file, &c, o.config);
  } catch (const std::exception& e) {
    f.error = e.what();
    return f;
  }
  for (const auto& w : t.warnings) out << "      warning: " << w << "\n";
  f.token_source = t.source;
  std::pair<std::string, unsigned short> hp;
  try {
    hp = split_host_port(f.address, 8405);
  } catch (const std::exception& e) {
    f.error = e.what();
    return f;
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (!t.value.empty()) headers.emplace_back("Authorization", "Bearer " + t.value);
  auto r = http_request(hp.first, hp.second, "GET", "/status", {}, headers, std::chrono::milliseconds(3000));
  f.reached = r.ok;
  f.connected = r.connected;
  f.error = r.error;
  f.http_status = r.status;
  if (r.ok && r.status == 200) {
    boost::system::error_code ec;
    auto v = boost::json::parse(r.body, ec);
    if (ec || !v.is_object()) {
      f.not_json = true;
    } else {
      auto str = [&](const char* k) -> std::string {
        auto* x = v.as_object().if_contains(k);
        return x && x->is_string() ? std::string(x->as_string()) : "?";
      };
      f.version = str("version");
      f.node = str("node");
    }
  }
  return f;
}

// Each VIP's entries on its device, as the daemon's start will see them
// (vrrp/vips.h claim_at_start). The netlink kernel needs CAP_NET_RAW (its
// GARP socket): without it, a WARN saying so.
std::vector<Verdict> vip_verdicts(const cfg::Config& c, const DaemonFacts& daemon) {
  std::vector<Verdict> out;
  boost::asio::io_context io;
  std::unique_ptr<vrrp::Kernel> kernel;
  std::string error;
  try {
    kernel = vrrp::make_netlink_kernel(io);
  } catch (const std::exception& e) {
    error = e.what();
  }
  for (const auto& inst : c.vrrp)
    for (const auto& va : inst.virtual_ipaddresses) {
      VipFacts f;
      f.device = va.device.empty() ? inst.interface : va.device;
      f.error = error;
      f.held_by_daemon = daemon.reached && daemon_holds_vip(daemon.status_json, va.address, f.device);
      if (kernel) {
        auto link = kernel->link(f.device);
        auto ip = vrrp::IpAddress::parse(va.address);
        if (!link) {
          f.error = "no interface " + f.device;
        } else if (ip) {
          vrrp::Vip v;
          v.address = *ip;
          v.prefix_len = va.prefix_len;
          v.device = f.device;
          v.ifindex = link->ifindex;
          f.entries = kernel->address_entries(v);
          if (!f.entries) f.error = "the address dump failed";
          if (auto others = f.entries ? kernel->address_elsewhere(v) : std::nullopt)
            f.elsewhere = vrrp::vips::taken_elsewhere(*ip, *others, [&](const vrrp::vips::Elsewhere& e) {
              return daemon.reached && daemon_holds_vip(daemon.status_json, va.address, e.device);
            });
        }
      }
      out.push_back(vip_address_verdict(va, f));
    }
  return out;
}

}  // namespace

std::vector<Verdict> run_doctor(const DoctorOptions& o, std::ostream& out) {
  std::vector<Verdict> all;
  auto emit = [&](const Verdict& v) {
    all.push_back(v);
    out << format_verdict(v) << "\n" << std::flush;
  };
  cfg::Config c;
  try {
    c = cfg::load_file(o.config);
    emit({Level::ok, "config", o.config + " is valid (" + std::to_string(c.proxies.size()) + " proxies, " +
                                   std::to_string(c.vrrp.size()) + " vrrp instances)"});
  } catch (const std::exception& e) {
    std::string msg = e.what();
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    emit({Level::fail, "config", msg});
    return all;
  }
  uint64_t capeff = 0;
  if (auto s = read_file("/proc/self/status"))
    if (auto v = parse_capeff(*s)) capeff = *v;
  for (const auto& v : data_path_verdicts(c)) emit(v);
  for (const auto& v : capability_verdicts(c, capeff, ::geteuid() == 0)) emit(v);
  emit(admin_verdict(probe_admin(c, o, out)));
  std::set<std::string> ifs;
  bool first_if_exists = false;
  for (const auto& v : c.vrrp) {
    if (!ifs.insert(v.interface).second) continue;
    auto link = probe_link(v.interface);
    if (v.interface == c.vrrp.front().interface) first_if_exists = link.exists;
    emit(interface_verdict(v.interface, link));
  }
  // ARP advice only for an interface that exists (the FAIL above says why).
  std::string first_if = c.vrrp.empty() || !first_if_exists ? "" : c.vrrp.front().interface;
  for (const auto& v : sysctl_verdicts(c, first_if, probe_sysctls(first_if))) emit(v);
  if (!c.vrrp.empty()) {
    if (!o.listen_adverts) {
      for (const auto& inst : c.vrrp) {
        AdvertFacts f;
        f.error = "skipped (--no-adverts)";
        emit(advert_verdict(inst, f));
      }
    } else {
      double secs = o.advert_seconds;
      if (secs <= 0) {
        cfg::Duration longest{0};
        for (const auto& inst : c.vrrp) longest = std::max(longest, inst.advert_int);
        secs = 3.0 * static_cast<double>(longest.count()) / 1000.0 + 0.2;
      }
      out << "      listening for VRRP adverts for " << secs << " s...\n" << std::flush;
      auto facts = listen_adverts(c, secs);
      for (const auto& inst : c.vrrp) emit(advert_verdict(inst, facts));
    }
    // What the running daemon dropped since it started (its counters): a
    // foreign cluster that is quiet right now still shows here.
    auto daemon = read_daemon_status(c, o);
    for (const auto& inst : c.vrrp) emit(foreign_routers_verdict(inst, daemon));
    for (const auto& v : vip_verdicts(c, daemon)) emit(v);
  }
  for (const auto& v : patroni_verdicts(c, probe_checks(c))) emit(v);
  for (const auto& v : tls_key_verdicts(c, [](const std::string& path) -> std::optional<unsigned> {
         struct stat st {};
         if (::stat(path.c_str(), &st) != 0) return std::nullopt;
         return static_cast<unsigned>(st.st_mode & 07777);
       }))
    emit(v);
  for (const auto& v : patroni_version_verdicts(probe_patroni_versions(c), probe_dcs(o))) emit(v);
  emit(etcd_verdict(probe_etcd(o)));
  return all;
}

}  // namespace ctl
