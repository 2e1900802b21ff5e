// The VRRP engine's test fixture: a fake Kernel that records what the engine
// asks of the kernel, an instance and adverts as the raw channels hand them
// over, and a Fixture that steps vrrp::Clock (or, for cases that start real
// processes, runs in real time). Shared by tests/unit/vrrp_engine_test.cpp
// and tests/integration/vrrp_engine_processes_test.cpp; test code only.
#pragma once

#include <boost/test/unit_test.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <map>
#include <set>
#include <cstdio>
#include <fstream>
#include <functional>
#include <ostream>
#include <sstream>
#include <unistd.h>

#include "vrrp/clock.h"
#include "vrrp/codec.h"
#include "vrrp/frame.h"
#include "vrrp/garp.h"
#include "vrrp/service.h"
#include "vrrp/track.h"

namespace vrrp {
inline std::ostream& operator<<(std::ostream& o, const IpAddress& a) { return o << a.to_string(); }
namespace fsm {
inline std::ostream& operator<<(std::ostream& o, State s) { return o << to_string(s); }
}  // namespace fsm
}  // namespace vrrp

using namespace vrrp;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace json = boost::json;

namespace vrrp_engine_fixture {

inline constexpr IpAddress kSelf = IpAddress::v4(10, 88, 1, 151);
inline constexpr IpAddress kPeer = IpAddress::v4(10, 88, 1, 152);
inline constexpr IpAddress kVip = IpAddress::v4(10, 88, 1, 160);

struct FakeKernel : Kernel {
  struct Sent {
    IpAddress src, dst;
    Advert advert;
  };
  std::map<std::string, LinkInfo> links;
  std::set<IpAddress> addresses;  // VIPs currently "configured"
  std::vector<Sent> adverts;
  std::vector<std::vector<uint8_t>> frames;
  DatagramHandler rx;
  Events events;
  int adds = 0, dels = 0;
  std::vector<Vip> added;  // every successful addition, as asked
  // Failure injection: the next N additions / removals fail with `error`
  // (transient), or every one while -1 (permanent); open_channel throws
  // while refuse_channel (the kernel refusing a raw socket).
  int fail_adds = 0, fail_dels = 0;
  // Every advert refused as an OUTPUT firewall rule makes sendto do (EPERM).
  bool refuse_sends = false;
  int refused_sends = 0;
  std::error_code error = std::make_error_code(std::errc::no_such_device);
  bool refuse_channel = false;
  // The ifindex of each channel opened, in order (a raw socket is bound to
  // its device: SO_BINDTODEVICE, IP_ADD_MEMBERSHIP by ifindex).
  std::vector<int> channel_ifindex;

  // Called from the destructor: what the kernel was left with once the
  // Service that owns it is gone.
  std::function<void(const FakeKernel&)> on_destroy;
  ~FakeKernel() override {
    if (on_destroy) on_destroy(*this);
  }

  FakeKernel() {
    LinkInfo l;
    l.ifindex = 2;
    l.name = "eth0";
    l.up = true;
    l.mac = {0x02, 0, 0, 0, 0, 0x51};
    l.primary_v4 = {kSelf};
    links["eth0"] = l;
  }
  void watch(Events e) override { events = std::move(e); }
  void stop() override {}
  std::optional<LinkInfo> link(const std::string& n) override {
    auto it = links.find(n);
    if (it == links.end()) return std::nullopt;
    return it->second;
  }
  struct FakeChannel : Channel {
    FakeKernel& k;
    explicit FakeChannel(FakeKernel& kk) : k(kk) {}
    std::error_code send(const IpAddress& src, const IpAddress& dst, std::span<const uint8_t> msg) override {
      if (k.refuse_sends) {
        ++k.refused_sends;
        return std::make_error_code(std::errc::operation_not_permitted);
      }
      RxMeta m{src.family, src, dst, 255, msg.size()};
      AuthExpect auth{AuthType::pass, "BacChaME"};
      auto d = decode(msg, m, msg[0] >> 4 == 2 ? auth : AuthExpect{});
      BOOST_REQUIRE_MESSAGE(d.ok(), "the engine sent an advert our own codec rejects");
      k.adverts.push_back({src, dst, *d});
      return {};
    }
  };
  std::unique_ptr<Channel> open_channel(const LinkInfo& link, Family, const IpAddress&, bool,
                                        DatagramHandler h) override {
    if (refuse_channel)
      throw std::system_error(std::make_error_code(std::errc::no_buffer_space), "vrrp: eth0: IP_ADD_MEMBERSHIP 224.0.0.18");
    channel_ifindex.push_back(link.ifindex);
    rx = std::move(h);
    return std::make_unique<FakeChannel>(*this);
  }
  static bool failing(int& n) {
    if (n == 0) return false;
    if (n > 0) --n;
    return true;
  }
  std::error_code add_address(const Vip& v) override {
    ++adds;
    if (failing(fail_adds)) return error;
    addresses.insert(v.address);
    added.push_back(v);
    return {};
  }
  std::error_code del_address(const Vip& v) override {
    ++dels;
    if (failing(fail_dels)) return error;
    addresses.erase(v.address);
    return {};
  }
  std::optional<bool> has_address(const Vip& v) override {
    return addresses.count(v.address) > 0 || host_entries.count(v.address) > 0;
  }
  // Entries the host had before us (no mark of ours: the host's own
  // address), and whether the kernel answers address dumps.
  std::map<IpAddress, std::vector<vips::Entry>> host_entries;
  bool dump_fails = false;
  bool keeps_marks = true;  // false: a kernel before 5.18 (no IFA_PROTO)
  std::optional<std::vector<vips::Entry>> address_entries(const Vip& v) override {
    if (dump_fails) return std::nullopt;
    std::vector<vips::Entry> out;
    if (auto it = host_entries.find(v.address); it != host_entries.end()) out = it->second;
    if (addresses.count(v.address)) out.push_back({v.prefix_len, keeps_marks ? vips::kVipAddressProtocol : uint8_t(0)});
    return out;
  }
  // The address on other devices of the host (eth1's own address...), and
  // whether that dump fails.
  std::map<IpAddress, std::vector<vips::Elsewhere>> elsewhere_entries;
  bool elsewhere_dump_fails = false;
  std::optional<std::vector<vips::Elsewhere>> address_elsewhere(const Vip& v) override {
    if (elsewhere_dump_fails) return std::nullopt;
    std::vector<vips::Elsewhere> out;
    if (auto it = elsewhere_entries.find(v.address); it != elsewhere_entries.end())
      for (const auto& e : it->second)
        if (e.ifindex != v.ifindex) out.push_back(e);
    return out;
  }
  std::error_code send_frame(int, std::span<const uint8_t> f) override {
    frames.emplace_back(f.begin(), f.end());
    return {};
  }
};

inline cfg::VrrpInstance instance(unsigned version = 3, unsigned priority = 100) {
  cfg::VrrpInstance v;
  v.name = "VI_1";
  v.interface = "eth0";
  v.virtual_router_id = 51;
  v.priority = priority;
  v.version = version;
  v.advert_int = version == 3 ? cfg::Duration(10) : cfg::Duration(1000);
  if (version == 2) {
    v.auth_type = cfg::AuthType::pass;
    v.auth_password = "BacChaME";
  }
  cfg::VirtualAddress va;
  va.address = "10.88.1.160";
  va.prefix_len = 24;
  v.virtual_ipaddresses.push_back(va);
  v.garp.master_delay = cfg::Duration(0);
  v.garp.master_repeat = 3;
  return v;
}

// An IPv4 datagram carrying a VRRP advert from `src`, as the raw socket gives it.
inline std::vector<uint8_t> datagram(uint8_t priority, IpAddress src = kPeer, uint8_t ttl = 255, unsigned version = 3,
                              uint16_t adver_int = 1, std::vector<IpAddress> addresses = {kVip}) {
  Advert a;
  a.version = uint8_t(version);
  a.vrid = 51;
  a.priority = priority;
  a.adver_int = adver_int;
  a.addresses = std::move(addresses);
  if (version == 2) {
    a.auth_type = 1;
    std::string pw = "BacChaME";
    std::copy(pw.begin(), pw.end(), a.auth_data.begin());
  }
  EncodeOpts o;
  o.src = src;
  o.dst = kVrrpGroupV4;
  auto msg = encode(a, o);
  Ipv4Params ip;
  ip.src = src;
  ip.ttl = ttl;
  auto d = build_ipv4_header(ip, msg.size());
  d.insert(d.end(), msg.begin(), msg.end());
  return d;
}

inline IpAddress v6(const char* text) { return *IpAddress::parse(text); }
inline const IpAddress kSelf6 = v6("fe80::51");
inline const IpAddress kPeer6 = v6("fe80::52");

inline cfg::VrrpInstance instance6(unsigned priority = 100) {
  auto v = instance(3, priority);
  v.virtual_ipaddresses[0].address = "fd88:1::160";
  v.virtual_ipaddresses[0].prefix_len = 64;
  return v;
}

// An IPv6 advert as the IPv6 channel hands it over: the message, and what
// recvmsg said about it (source, destination, Hop Limit).
struct Datagram6 {
  std::vector<uint8_t> message;
  RxMeta meta;
};
inline Datagram6 datagram6(uint8_t priority, IpAddress src = kPeer6, uint8_t hop_limit = 255) {
  Advert a;
  a.version = 3;
  a.vrid = 51;
  a.priority = priority;
  a.adver_int = 1;
  a.addresses = {v6("fd88:1::160")};
  EncodeOpts o;
  o.family = Family::ipv6;
  o.src = src;
  o.dst = kVrrpGroupV6;
  auto msg = encode(a, o);
  return {msg, RxMeta{Family::ipv6, src, kVrrpGroupV6, hop_limit, msg.size()}};
}

struct Fixture {
  // The engines' timers run on vrrp::Clock: manual here, so run() steps
  // time instead of sleeping and every test sees the same sequence however
  // loaded the machine is. Tests that start real processes (track scripts,
  // notify hooks) call realtime() first: a child needs real time to run.
  Fixture() { Clock::use_manual(); }
  ~Fixture() {
    svc.reset();
    Clock::use_real();
  }
  void realtime() {
    BOOST_REQUIRE_MESSAGE(!svc, "realtime() before make()");
    Clock::use_real();
    manual = false;
  }
  bool manual = true;
  asio::io_context io;
  FakeKernel* k = nullptr;
  std::map<std::string, bool> proxies;
  std::unique_ptr<Service> svc;

  // release: what the daemon does once it has dropped its capabilities
  // (scripts and hooks wait for it).
  // Runs on the kernel before the Service starts (addresses already there).
  std::function<void(FakeKernel&)> before_start;
  void make(std::vector<cfg::VrrpInstance> insts, bool release = true) {
    auto fk = std::make_unique<FakeKernel>();
    k = fk.get();
    if (before_start) before_start(*fk);
    svc = std::make_unique<Service>(
        io, insts, "node",
        // A proxy missing from the map has no check result yet.
        [this](const std::string& p) -> std::optional<bool> {
          if (!proxies.count(p)) return std::nullopt;
          return proxies[p];
        },
        std::move(fk));
    svc->start();
    if (release) svc->release_scripts();
  }
  Engine& e() { return *svc->engines()[0]; }
  // Lets `d` pass: in 1 ms steps on the manual clock (each due timer fires
  // at its step, in order), or in real time.
  void run(std::chrono::milliseconds d) {
    io.restart();
    if (!manual) {
      io.run_for(d);
      return;
    }
    settle();
    for (auto t = 0ms; t < d; t += 1ms) {
      Clock::advance(1ms);
      settle();
    }
  }
  // Runs every handler due at the manual clock's now, those that handlers
  // arm for now included. A poll() alone did not: asio's epoll reactor looks
  // at its timer queue only after its timerfd has fired, and the timerfd,
  // armed for "now" (ClockWaitTraits), fires from the kernel's timer
  // interrupt, a little later in real time. On this machine that was
  // sooner than the next poll; in an emulated guest (scripts/kernel-vm,
  // QEMU TCG, Linux 6.1 and 6.8) the 150 polls of a run(150ms) were over
  // first, a due timer stayed unfired and 21 to 34 of the cases failed
  // (a backup never became MASTER), one with a crash. So each step waits
  // for a timer of its own, due now: once it has fired, the reactor has
  // looked at the queue after the step, and every timer then due has run.
  void settle() {
    for (int round = 0; round < 100; ++round) {
      // Out of work, the io_context stopped (a poll() that finds nothing
      // left stops it: shutdown's test asserts that): our timer is work.
      if (io.stopped()) io.restart();
      Timer mark(io);
      mark.expires_at(Clock::now());
      bool fired = false;
      mark.async_wait([&](const boost::system::error_code&) { fired = true; });
      std::size_t ran = 0;
      while (!fired) {
        std::size_t n = io.run_one_for(std::chrono::seconds(10));
        BOOST_REQUIRE_MESSAGE(n > 0 || fired, "the io_context ran nothing for 10 s with a timer due");
        ran += n;
      }
      ran += io.poll();
      if (ran <= 1) return;  // only our own timer: nothing else was due
    }
  }
  // IPv4: the whole datagram, as a raw IPv4 socket hands it over.
  void deliver(const std::vector<uint8_t>& d) { k->rx(Received{d, std::nullopt}); }
  void deliver(const Datagram6& d) { k->rx(Received{d.message, d.meta}); }
};

inline cfg::TrackScript script(const std::string& command, int weight, cfg::Duration timeout = cfg::Duration(1000)) {
  cfg::TrackScript t;
  t.name = "chk";
  t.command = command;
  t.interval = cfg::Duration(20);
  t.timeout = timeout;
  t.weight = weight;
  return t;
}

template <class F>
bool run_until(Fixture& f, F cond, std::chrono::milliseconds limit = 2000ms) {
  auto deadline = Clock::now() + limit;
  while (!cond()) {
    if (Clock::now() > deadline) return false;
    f.run(10ms);
  }
  return true;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// The process exists and is not a zombie (/proc/PID/stat: "PID (comm) S ...").
inline bool running_process(int pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

}  // namespace vrrp_engine_fixture

using namespace vrrp_engine_fixture;
