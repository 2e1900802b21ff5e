#include "vrrp/netlink.h"

#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "vrrp/codec.h"
#include "vrrp/fd_reader.h"
#include "vrrp/frame.h"

namespace vrrp {
namespace {

namespace asio = boost::asio;

class NlCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "libnl"; }
  std::string message(int ev) const override { return nl_geterror(ev); }
};
const NlCategory& nl_category() {
  static NlCategory c;
  return c;
}
std::error_code nl_error(int err) { return {err < 0 ? -err : err, nl_category()}; }
std::error_code errno_code() { return {errno, std::system_category()}; }

// A flood of junk on the link (10k datagrams/s in tests/integration/
// test_flood_netns.py) fills the default receive buffer (rmem_default,
// 208 KiB: about 270 small datagrams, 30 ms of such a flood) whenever the
// control thread is off the CPU that long, and the kernel then drops the
// peer's adverts along with the junk; three in a row and a backup takes
// over. 2 MiB holds a quarter of a second of that flood, and costs memory
// only while full. SO_RCVBUFFORCE (CAP_NET_ADMIN, held for the VIPs) passes
// net.core.rmem_max; without it SO_RCVBUF is capped there, still no worse.
void enlarge_receive_buffer(int fd) {
  int bytes = 1 << 20;  // the kernel doubles it for its bookkeeping (socket(7))
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) < 0)
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

// A descriptor closed on every path until handed over (release()).
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(OwnedFd&& o) noexcept : fd_(o.release()) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// setsockopt that must succeed: throws naming the interface and the option.
template <class T>
void set_option(const OwnedFd& fd, const LinkInfo& link, int level, int name, const T& value, const char* what) {
  if (::setsockopt(fd.get(), level, name, &value, socklen_t(sizeof value)) < 0)
    throw std::system_error(errno_code(), "vrrp: " + link.name + ": " + what);
}
// One that documents intent but may fail harmlessly (ignored by the kernel).
template <class T>
void try_option(const OwnedFd& fd, int level, int name, const T& value) {
  (void)::setsockopt(fd.get(), level, name, &value, socklen_t(sizeof value));
}

// A raw IPPROTO_VRRP socket (protocol 112) of `family`, non-blocking,
// receiving only what arrives on `link` (RFC 5798 §7.1 "MUST verify that the
// VRID is configured on the receiving interface"), with a receive buffer that
// rides out a flood. The family's own options are the caller's.
OwnedFd open_raw(int family, const LinkInfo& link) {
  OwnedFd fd(::socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, kIpProtoVrrp));
  if (fd.get() < 0)
    throw std::system_error(errno_code(), std::string("vrrp: raw ") + (family == AF_INET6 ? "IPv6 " : "") +
                                              "socket (protocol 112) on " + link.name + " (needs CAP_NET_RAW)");
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, link.name.c_str(), socklen_t(link.name.size())) < 0)
    throw std::system_error(errno_code(), "vrrp: " + link.name + ": SO_BINDTODEVICE");
  enlarge_receive_buffer(fd.get());
  return fd;
}

// What both raw channels share: the interface, the reader that owns the
// socket, and sending one datagram to an address of the family.
class RawChannelBase : public Channel {
 protected:
  explicit RawChannelBase(const LinkInfo& link) : link_(link) {}
  ~RawChannelBase() override {
    if (reader_) reader_->close();
  }
  template <class SockAddr>
  std::error_code send_to(const SockAddr& to, std::span<const uint8_t> bytes) {
    if (::sendto(reader_->native_handle(), bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                 sizeof to) < 0)
      return errno_code();
    return {};
  }

  LinkInfo link_;
  std::shared_ptr<FdReader> reader_;
};

class RawChannel : public RawChannelBase {
 public:
  RawChannel(asio::io_context& io, const LinkInfo& link, bool join_group, Kernel::DatagramHandler h)
      : RawChannelBase(link) {
    OwnedFd fd = open_raw(AF_INET, link);
    // We write the IPv4 header ourselves (vrrp/frame build_ipv4_header): TTL
    // 255 for multicast and unicast alike (RFC 5798 §5.1.1.3), TOS 0xc0 and
    // the source address that the v3 pseudo-header checksum was computed
    // over. The options below are what keepalived sets; with IP_HDRINCL the
    // kernel ignores TTL/TOS, but they document intent and cost nothing.
    set_option(fd, link, IPPROTO_IP, IP_HDRINCL, 1, "IP_HDRINCL");
    try_option(fd, IPPROTO_IP, IP_MULTICAST_TTL, 255);
    try_option(fd, IPPROTO_IP, IP_TOS, 0xc0);
    // Our own adverts are not a peer (the fsm ignores them too).
    set_option(fd, link, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
    ip_mreqn mreq{};
    mreq.imr_ifindex = link.ifindex;
    set_option(fd, link, IPPROTO_IP, IP_MULTICAST_IF, mreq, "IP_MULTICAST_IF");
    if (join_group) {
      // RFC 5798 §5.1.1.2: adverts go to 224.0.0.18; joining makes the NIC
      // and any IGMP-snooping switch deliver them.
      mreq.imr_multiaddr.s_addr = htonl(0xe0000012);
      set_option(fd, link, IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq, "IP_ADD_MEMBERSHIP 224.0.0.18");
    }
    reader_ = std::make_shared<FdReader>(io, fd.get(), [fd = fd.get(), h = std::move(h)] {
      uint8_t buf[2048];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0) return false;  // EAGAIN: drained (other errors: next wakeup)
      h(Received{std::span<const uint8_t>(buf, size_t(n)), std::nullopt});
      return true;
    });
    fd.release();  // the reader owns it now
    reader_->arm();
  }

  std::error_code send(const IpAddress& src, const IpAddress& dst, std::span<const uint8_t> msg) override {
    Ipv4Params ip;
    ip.src = src;
    ip.dst = dst;
    auto pkt = build_ipv4_header(ip, msg.size());
    pkt.insert(pkt.end(), msg.begin(), msg.end());
    sockaddr_in to{};
    to.sin_family = AF_INET;
    std::memcpy(&to.sin_addr, dst.bytes.data(), 4);
    return send_to(to, pkt);
  }
};

// VRRPv3 over IPv6 (RFC 5798 §5.1.2): ff02::12, Hop Limit 255, source our
// link-local. The kernel gives no IPv6 header on raw sockets: the engine
// gets the message with recvmsg's source, IPV6_PKTINFO destination and
// IPV6_HOPLIMIT (Received::meta) and checks the Hop Limit itself.
class RawChannel6 : public RawChannelBase {
 public:
  RawChannel6(asio::io_context& io, const LinkInfo& link, const IpAddress& src, bool join_group,
              Kernel::DatagramHandler h)
      : RawChannelBase(link) {
    OwnedFd fd = open_raw(AF_INET6, link);
    set_option(fd, link, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255, "IPV6_MULTICAST_HOPS");
    set_option(fd, link, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 255, "IPV6_UNICAST_HOPS");
    try_option(fd, IPPROTO_IPV6, IPV6_TCLASS, 0xc0);
    set_option(fd, link, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP");
    set_option(fd, link, IPPROTO_IPV6, IPV6_MULTICAST_IF, link.ifindex, "IPV6_MULTICAST_IF");
    set_option(fd, link, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT");
    set_option(fd, link, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
    // A link-local that is still tentative (DAD running) cannot be bound
    // without this; sends fail until DAD is over, which the engine counts.
    try_option(fd, IPPROTO_IPV6, 78 /* IPV6_FREEBIND */, 1);
    sockaddr_in6 me{};
    me.sin6_family = AF_INET6;
    std::memcpy(&me.sin6_addr, src.bytes.data(), 16);
    me.sin6_scope_id = uint32_t(link.ifindex);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&me), sizeof me) < 0)
      throw std::system_error(errno_code(), "vrrp: " + link.name + ": bind to the link-local address");
    if (join_group) {
      ipv6_mreq mreq{};
      std::memcpy(&mreq.ipv6mr_multiaddr, kVrrpGroupV6.bytes.data(), 16);
      mreq.ipv6mr_interface = unsigned(link.ifindex);
      set_option(fd, link, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq, "IPV6_ADD_MEMBERSHIP ff02::12");
    }
    reader_ = std::make_shared<FdReader>(io, fd.get(), [fd = fd.get(), h = std::move(h)] {
      uint8_t buf[2048];
      alignas(cmsghdr) uint8_t control[256];
      {
        sockaddr_in6 from{};
        iovec iov{buf, sizeof buf};
        msghdr m{};
        m.msg_name = &from;
        m.msg_namelen = sizeof from;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(fd, &m, 0);
        if (n < 0) return false;
        int hop = -1;
        IpAddress dst = kVrrpGroupV6;
        for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
          if (c->cmsg_level != IPPROTO_IPV6) continue;
          if (c->cmsg_type == IPV6_HOPLIMIT) std::memcpy(&hop, CMSG_DATA(c), sizeof hop);
          if (c->cmsg_type == IPV6_PKTINFO) {
            in6_pktinfo pi;
            std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
            dst = IpAddress::v6(std::span<const uint8_t, 16>(reinterpret_cast<const uint8_t*>(&pi.ipi6_addr), 16));
          }
        }
        // Without the Hop Limit we cannot check it: 0 makes the codec drop it.
        auto src = IpAddress::v6(std::span<const uint8_t, 16>(reinterpret_cast<const uint8_t*>(&from.sin6_addr), 16));
        h(Received{std::span<const uint8_t>(buf, size_t(n)),
                   RxMeta{Family::ipv6, src, dst, uint8_t(hop < 0 ? 0 : hop), size_t(n)}});
      }
      return true;
    });
    fd.release();  // the reader owns it now
    reader_->arm();
  }

  std::error_code send(const IpAddress&, const IpAddress& dst, std::span<const uint8_t> msg) override {
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    std::memcpy(&to.sin6_addr, dst.bytes.data(), 16);
    to.sin6_scope_id = uint32_t(link_.ifindex);
    return send_to(to, msg);
  }
};

class NetlinkKernel : public Kernel {
 public:
  explicit NetlinkKernel(asio::io_context& io) : io_(io) {
    req_ = nl_socket_alloc();
    if (!req_) throw std::runtime_error("vrrp: nl_socket_alloc failed");
    if (int err = nl_connect(req_, NETLINK_ROUTE); err < 0)
      throw std::system_error(nl_error(err), "vrrp: netlink connect");
    packet_fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (packet_fd_ < 0)
      throw std::system_error(errno_code(), "vrrp: AF_PACKET socket for gratuitous ARP (needs CAP_NET_RAW)");
  }
  ~NetlinkKernel() override {
    stop();
    if (req_) nl_socket_free(req_);
  }

  void watch(Events ev) override {
    events_ = std::move(ev);
    mon_ = nl_socket_alloc();
    if (!mon_) throw std::runtime_error("vrrp: nl_socket_alloc failed");
    nl_socket_disable_seq_check(mon_);
    nl_socket_modify_cb(mon_, NL_CB_VALID, NL_CB_CUSTOM, &NetlinkKernel::on_msg, this);
    if (int err = nl_connect(mon_, NETLINK_ROUTE); err < 0)
      throw std::system_error(nl_error(err), "vrrp: netlink connect (events)");
    if (int err = nl_socket_add_memberships(mon_, RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, 0);
        err < 0)
      throw std::system_error(nl_error(err), "vrrp: netlink subscribe");
    nl_socket_set_nonblocking(mon_);
    // Events come in bursts (a link flap); a large buffer avoids ENOBUFS.
    nl_socket_set_buffer_size(mon_, 1 << 20, 0);
    // asio closes its copy, libnl its own; dup() would drop close-on-exec.
    int fd = ::fcntl(nl_socket_get_fd(mon_), F_DUPFD_CLOEXEC, 0);
    mon_reader_ = std::make_shared<FdReader>(io_, fd, [this] {
      // Returns after draining (EAGAIN). ENOBUFS (NLE_NOMEM) means the
      // kernel dropped events for us: ask everyone to re-read the state.
      int err = nl_recvmsgs_default(mon_);
      if (err == -NLE_NOMEM && events_.resync) events_.resync();
      return false;
    });
    mon_reader_->arm();
  }

  void stop() override {
    if (mon_reader_) mon_reader_->close(), mon_reader_.reset();
    if (mon_) nl_socket_free(mon_), mon_ = nullptr;
    if (packet_fd_ >= 0) ::close(packet_fd_), packet_fd_ = -1;
  }

  std::optional<LinkInfo> link(const std::string& name) override {
    rtnl_link* l = nullptr;
    if (rtnl_link_get_kernel(req_, 0, name.c_str(), &l) < 0 || !l) return std::nullopt;
    LinkInfo info;
    info.name = name;
    info.ifindex = rtnl_link_get_ifindex(l);
    unsigned flags = rtnl_link_get_flags(l);
    info.up = (flags & IFF_UP) && (flags & IFF_RUNNING);
    if (nl_addr* a = rtnl_link_get_addr(l); a && nl_addr_get_len(a) == 6)
      std::memcpy(info.mac.data(), nl_addr_get_binary_addr(a), 6);
    rtnl_link_put(l);

    nl_cache* cache = nullptr;
    if (rtnl_addr_alloc_cache(req_, &cache) == 0) {
      for (nl_object* o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        auto* a = reinterpret_cast<rtnl_addr*>(o);
        if (rtnl_addr_get_ifindex(a) != info.ifindex) continue;
        if (rtnl_addr_get_family(a) == AF_INET6) {
          nl_addr* l6 = rtnl_addr_get_local(a);
          if (!l6 || nl_addr_get_len(l6) != 16) continue;
          auto* b = static_cast<const uint8_t*>(nl_addr_get_binary_addr(l6));
          if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
            info.link_local_v6.push_back(IpAddress::v6(std::span<const uint8_t, 16>(b, 16)));
          continue;
        }
        if (rtnl_addr_get_family(a) != AF_INET) continue;
        if (rtnl_addr_get_flags(a) & IFA_F_SECONDARY) continue;
        nl_addr* local = rtnl_addr_get_local(a);
        if (!local || nl_addr_get_len(local) != 4) continue;
        info.primary_v4.push_back(
            IpAddress::v4(std::span<const uint8_t, 4>(static_cast<const uint8_t*>(nl_addr_get_binary_addr(local)), 4)));
      }
      nl_cache_free(cache);
    }
    return info;
  }

  std::unique_ptr<Channel> open_channel(const LinkInfo& link, Family family, const IpAddress& src, bool join_group,
                                        DatagramHandler h) override {
    if (family == Family::ipv6) return std::make_unique<RawChannel6>(io_, link, src, join_group, std::move(h));
    return std::make_unique<RawChannel>(io_, link, join_group, std::move(h));
  }

  std::error_code add_address(const Vip& vip) override {
    return change_address(vip, true);
  }
  std::error_code del_address(const Vip& vip) override {
    return change_address(vip, false);
  }

  std::optional<std::vector<vips::Entry>> address_entries(const Vip& vip) override {
    auto all = entries_everywhere(vip.address);
    if (!all) return std::nullopt;
    std::vector<vips::Entry> out;
    for (const auto& [ifindex, e] : *all)
      if (ifindex == vip.ifindex) out.push_back(e);
    return out;
  }

  std::optional<std::vector<vips::Elsewhere>> address_elsewhere(const Vip& vip) override {
    auto all = entries_everywhere(vip.address);
    if (!all) return std::nullopt;
    std::vector<vips::Elsewhere> out;
    for (const auto& [ifindex, e] : *all) {
      if (ifindex == vip.ifindex) continue;
      char name[IF_NAMESIZE] = {};
      const bool named = ::if_indextoname(unsigned(ifindex), name) != nullptr;
      out.push_back({named ? std::string(name) : "ifindex " + std::to_string(ifindex), ifindex, e});
    }
    return out;
  }

  // Every entry of `address` on any device, by ifindex.
  std::optional<std::vector<std::pair<int, vips::Entry>>> entries_everywhere(const IpAddress& address) {
    // A dump of our own: libnl's rtnl_addr objects do not keep IFA_PROTO.
    struct Ctx {
      const IpAddress* address;
      int family;
      std::vector<std::pair<int, vips::Entry>> out;
    } ctx{&address, address.family == Family::ipv4 ? AF_INET : AF_INET6, {}};
    nl_cb* cb = nl_cb_alloc(NL_CB_DEFAULT);
    if (!cb) return std::nullopt;
    nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, [](nl_msg* msg, void* arg) -> int {
      auto& c = *static_cast<Ctx*>(arg);
      nlmsghdr* h = nlmsg_hdr(msg);
      if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return NL_OK;
      auto* ifa = static_cast<ifaddrmsg*>(nlmsg_data(h));
      if (ifa->ifa_family != c.family) return NL_OK;
      // The address itself: IFA_LOCAL (IPv4, and IPv6 on point-to-point
      // links), else IFA_ADDRESS.
      nlattr* a = nlmsg_find_attr(h, sizeof(ifaddrmsg), IFA_LOCAL);
      if (!a) a = nlmsg_find_attr(h, sizeof(ifaddrmsg), IFA_ADDRESS);
      if (!a || std::size_t(nla_len(a)) != c.address->size() ||
          std::memcmp(nla_data(a), c.address->bytes.data(), c.address->size()) != 0)
        return NL_OK;
      vips::Entry e;
      e.prefix_len = ifa->ifa_prefixlen;
      if (nlattr* p = nlmsg_find_attr(h, sizeof(ifaddrmsg), IFA_PROTO); p && nla_len(p) >= 1) e.protocol = nla_get_u8(p);
      c.out.emplace_back(int(ifa->ifa_index), e);
      return NL_OK;
    }, &ctx);
    ifaddrmsg req{};
    req.ifa_family = uint8_t(ctx.family);
    // A dump the kernel interrupted (NLM_F_DUMP_INTR: the addresses changed
    // meanwhile, common on a host where containers come and go) is asked
    // again: an instance refuses to start on an unanswered one.
    int err = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
      ctx.out.clear();
      err = nl_send_simple(req_, RTM_GETADDR, NLM_F_DUMP, &req, sizeof req);
      if (err >= 0) err = nl_recvmsgs(req_, cb);
      if (err != -NLE_DUMP_INTR) break;
    }
    nl_cb_put(cb);
    if (err < 0) return std::nullopt;
    return std::move(ctx.out);
  }

  std::optional<bool> has_address(const Vip& vip) override {
    bool found = false;
    if (!for_each_entry(vip, [&](rtnl_addr*) { found = true; })) return std::nullopt;
    return found;
  }

  std::error_code send_frame(int ifindex, std::span<const uint8_t> frame) override {
    if (packet_fd_ < 0) return std::make_error_code(std::errc::bad_file_descriptor);
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = ifindex;
    // The frame's own ethertype (ARP, or IPv6 for an unsolicited NA).
    to.sll_protocol = frame.size() >= 14 ? htons(uint16_t(frame[12] << 8 | frame[13])) : htons(ETH_P_ARP);
    to.sll_halen = 6;
    if (frame.size() >= 6) std::memcpy(to.sll_addr, frame.data(), 6);
    if (::sendto(packet_fd_, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
      return errno_code();
    return {};
  }

 private:
  // Removes every entry of vip.address on vip.ifindex, whatever its prefix
  // length and label. The kernel deletes an address only when the request
  // names its prefix length (IPv4: and its label) too, and answers
  // EADDRNOTAVAIL otherwise, which change_address() must take as "already
  // gone" for its idempotence; has_address() looks at the address alone.
  // So the VIP added by hand as /32 (ip's default) where the configuration
  // says /24, or left by a killed run before the prefix or label was
  // edited, stayed on a BACKUP for good: each check found it, each delete
  // "succeeded", and two nodes answered ARP for it. The entries are taken
  // from a dump and deleted as the kernel has them. nullopt: no dump.
  std::optional<std::error_code> delete_every_entry(const Vip& vip) {
    std::error_code result;
    if (!for_each_entry(vip, [&](rtnl_addr* a) {
          int err = rtnl_addr_delete(req_, a, 0);
          if (err < 0 && err != -NLE_NOADDR && err != -NLE_OBJ_NOTFOUND && !result) result = nl_error(err);
        }))
      return std::nullopt;
    return result;
  }

  // Calls `fn` for each entry of vip.address on vip.ifindex in a fresh dump
  // of the kernel's addresses (any prefix length or label). False: no dump.
  template <typename Fn>
  bool for_each_entry(const Vip& vip, Fn fn) {
    nl_cache* cache = nullptr;
    if (rtnl_addr_alloc_cache(req_, &cache) != 0) return false;
    const int family = vip.address.family == Family::ipv4 ? AF_INET : AF_INET6;
    for (nl_object* o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
      auto* a = reinterpret_cast<rtnl_addr*>(o);
      if (rtnl_addr_get_ifindex(a) != vip.ifindex || rtnl_addr_get_family(a) != family) continue;
      nl_addr* local = rtnl_addr_get_local(a);
      if (local && nl_addr_get_len(local) == vip.address.size() &&
          std::memcmp(nl_addr_get_binary_addr(local), vip.address.bytes.data(), vip.address.size()) == 0)
        fn(a);
    }
    nl_cache_free(cache);
    return true;
  }

  std::error_code change_address(const Vip& vip, bool add) {
    if (!add)
      if (auto done = delete_every_entry(vip)) return *done;
    rtnl_addr* a = rtnl_addr_alloc();
    if (!a) return std::make_error_code(std::errc::not_enough_memory);
    const int family = vip.address.family == Family::ipv4 ? AF_INET : AF_INET6;
    nl_addr* local = nl_addr_build(family, vip.address.bytes.data(), vip.address.size());
    nl_addr_set_prefixlen(local, int(vip.prefix_len));
    rtnl_addr_set_ifindex(a, vip.ifindex);
    rtnl_addr_set_family(a, family);
    rtnl_addr_set_local(a, local);  // also takes the prefix length from `local`
    rtnl_addr_set_prefixlen(a, int(vip.prefix_len));
    if (!vip.label.empty() && family == AF_INET) rtnl_addr_set_label(a, vip.label.c_str());
    // An IPv6 VIP moves between nodes: duplicate address detection would
    // hold it tentative (unusable) for a second or more (keepalived: nodad).
    if (family == AF_INET6) rtnl_addr_set_flags(a, IFA_F_NODAD);
    int err = 0;
    if (add) {
      // Marked as ours (vips::kVipAddressProtocol): the next start tells a
      // VIP a killed run of ours left from the host's own address by it
      // (vips::claim_at_start). libnl has no setter for IFA_PROTO; a kernel
      // before 5.18 ignores the attribute (and keeps no mark).
      nl_msg* msg = nullptr;
      err = rtnl_addr_build_add_request(a, 0, &msg);
      if (err == 0) {
        err = nla_put_u8(msg, IFA_PROTO, vips::kVipAddressProtocol);
        if (err == 0) err = nl_send_sync(req_, msg);  // frees msg
        else nlmsg_free(msg);
      }
    } else {
      err = rtnl_addr_delete(req_, a, 0);
    }
    nl_addr_put(local);
    rtnl_addr_put(a);
    // Idempotent by design: the address already there (EEXIST) or already
    // gone (EADDRNOTAVAIL -> NLE_NOADDR) is the state we wanted.
    if (err == 0 || (add && err == -NLE_EXIST) || (!add && (err == -NLE_NOADDR || err == -NLE_OBJ_NOTFOUND)))
      return {};
    return nl_error(err);
  }

  static int on_msg(nl_msg* msg, void* arg) {
    auto* self = static_cast<NetlinkKernel*>(arg);
    nlmsghdr* h = nlmsg_hdr(msg);
    if (h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK) {
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return NL_OK;
      auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(h));
      LinkInfo l;
      l.ifindex = ifi->ifi_index;
      l.up = h->nlmsg_type == RTM_NEWLINK && (ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & IFF_RUNNING);
      if (nlattr* n = nlmsg_find_attr(h, sizeof(ifinfomsg), IFLA_IFNAME)) l.name = nla_get_string(n);
      if (self->events_.link_changed) self->events_.link_changed(l);
    } else if (h->nlmsg_type == RTM_DELADDR || h->nlmsg_type == RTM_NEWADDR) {
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) return NL_OK;
      auto* ifa = static_cast<ifaddrmsg*>(nlmsg_data(h));
      IpAddress ip;
      if (ifa->ifa_family == AF_INET) {
        nlattr* n = nlmsg_find_attr(h, sizeof(ifaddrmsg), IFA_LOCAL);
        if (!n || nla_len(n) != 4) return NL_OK;
        ip = IpAddress::v4(std::span<const uint8_t, 4>(static_cast<const uint8_t*>(nla_data(n)), 4));
      } else if (ifa->ifa_family == AF_INET6) {
        // IPv6 addresses carry IFA_ADDRESS (IFA_LOCAL only on point-to-point).
        nlattr* n = nlmsg_find_attr(h, sizeof(ifaddrmsg), IFA_ADDRESS);
        if (!n || nla_len(n) != 16) return NL_OK;
        ip = IpAddress::v6(std::span<const uint8_t, 16>(static_cast<const uint8_t*>(nla_data(n)), 16));
      } else {
        return NL_OK;
      }
      auto& handler = h->nlmsg_type == RTM_DELADDR ? self->events_.address_removed : self->events_.address_added;
      if (handler) handler(int(ifa->ifa_index), ip);
    }
    return NL_OK;
  }

  asio::io_context& io_;
  nl_sock* req_ = nullptr;
  nl_sock* mon_ = nullptr;
  std::shared_ptr<FdReader> mon_reader_;
  int packet_fd_ = -1;
  Events events_;
};

}  // namespace

std::unique_ptr<Kernel> make_netlink_kernel(asio::io_context& io) {
  return std::make_unique<NetlinkKernel>(io);
}

}  // namespace vrrp
