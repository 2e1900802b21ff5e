// The narrow kernel interface the VRRP engine talks to: links, the raw VRRP
// channel of an instance, virtual addresses and gratuitous ARP. The real
// implementation (vrrp/netlink) uses libnl, raw IPPROTO_VRRP sockets and
// AF_PACKET; unit tests use a fake that records what the engine asked for,
// so every engine rule runs without sockets (Katran's BaseBpfAdapter split).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "vrrp/address.h"
#include "vrrp/codec.h"
#include "vrrp/vips.h"

namespace vrrp {

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  // Administratively up and carrier present (IFF_UP && IFF_RUNNING): a veth
  // whose peer went down keeps IFF_UP but loses the carrier, and either way
  // adverts can no longer reach the LAN.
  bool up = false;
  MacAddress mac{};
  // The interface's primary IPv4 addresses (not IFA_F_SECONDARY), in kernel
  // order; the first one not managed by us is the advert source.
  std::vector<IpAddress> primary_v4;
  // Its IPv6 link-local addresses (fe80::/10): the source of VRRPv3 IPv6
  // adverts (RFC 5798 §5.1.2.1) and of unsolicited NAs.
  std::vector<IpAddress> link_local_v6;
};

struct Vip {
  IpAddress address;
  unsigned prefix_len = 32;
  std::string label;  // IPv4 label ("eth0:vip"); empty: none
  std::string device; // empty: the instance's interface
  int ifindex = 0;    // resolved by the engine
};

// What a raw VRRP socket received. IPv4: Linux raw IPv4 sockets deliver the
// IP header with the datagram, so `bytes` is the whole datagram and the
// intake reads the header (vrrp/frame parse_ipv4). IPv6: raw IPv6 sockets
// deliver the payload only, so `bytes` is the VRRP message and `meta` what
// recvmsg said: the source, the IPV6_PKTINFO destination and the
// IPV6_HOPLIMIT Hop Limit (ttl 0 when the kernel gave none: the codec then
// drops it, bad_ttl). Valid for the duration of the callback.
struct Received {
  std::span<const uint8_t> bytes;
  std::optional<RxMeta> meta;
};

// The raw VRRP socket of one instance on one interface. What it receives
// arrives through the callback given to open_channel.
class Channel {
 public:
  virtual ~Channel() = default;
  // Sends one VRRP message with TTL 255 from `src` to `dst` (224.0.0.18 or a
  // unicast peer). The IP header is the channel's business.
  virtual std::error_code send(const IpAddress& src, const IpAddress& dst,
                               std::span<const uint8_t> vrrp_message) = 0;
};

class Kernel {
 public:
  using DatagramHandler = std::function<void(const Received&)>;
  struct Events {
    // RTM_NEWLINK / RTM_DELLINK: name, ifindex and the new up state.
    std::function<void(const LinkInfo&)> link_changed;
    // RTM_DELADDR: someone (or the kernel) removed an address.
    std::function<void(int ifindex, const IpAddress&)> address_removed;
    // RTM_NEWADDR: an address was added (by us or by anyone else).
    std::function<void(int ifindex, const IpAddress&)> address_added;
    // The event socket overflowed (ENOBUFS): some events were lost, so
    // every listener must re-read the state it depends on.
    std::function<void()> resync;
  };

  virtual ~Kernel() = default;
  // Starts delivering events (link and address changes) to `events`.
  virtual void watch(Events events) = 0;
  // Stops watching and closes every socket the kernel object owns.
  virtual void stop() = 0;
  virtual std::optional<LinkInfo> link(const std::string& name) = 0;
  // Throws std::system_error (naming the interface) when the socket cannot
  // be opened: a missing capability or interface is a startup error.
  // IPv4: raw protocol-112 socket, datagrams with their IPv4 header. IPv6:
  // the message with its metadata (Received); `src` (our link-local) is
  // bound so the kernel sends from the address the checksum was computed
  // over.
  virtual std::unique_ptr<Channel> open_channel(const LinkInfo& link, Family family, const IpAddress& src,
                                                bool join_group, DatagramHandler on_datagram) = 0;
  // Idempotent: an address already present (EEXIST) or already absent
  // (EADDRNOTAVAIL) is success. An address added carries the mark
  // vips::kVipAddressProtocol (IFA_PROTO; kernels before 5.18 ignore it).
  virtual std::error_code add_address(const Vip& vip) = 0;
  virtual std::error_code del_address(const Vip& vip) = 0;
  // Whether `vip` is on its device now, from the kernel (RTM_GETADDR):
  // events arrive late and can be lost, so the engine checks what it
  // believes about its VIPs against this. nullopt: the kernel could not be
  // asked (the engine then relies on the add/delete answers alone).
  virtual std::optional<bool> has_address(const Vip& vip) {
    (void)vip;
    return std::nullopt;
  }
  // Every entry of vip.address on its device now, with its mark, from the
  // kernel (RTM_GETADDR): what vips::claim_at_start decides on. nullopt: the
  // kernel could not be asked.
  virtual std::optional<std::vector<vips::Entry>> address_entries(const Vip& vip) {
    (void)vip;
    return std::nullopt;
  }
  // vip.address's entries on every device but vip.ifindex, with the device's
  // name (vips::taken_elsewhere decides). nullopt: the kernel could not be
  // asked. The default (fakes): nowhere else.
  virtual std::optional<std::vector<vips::Elsewhere>> address_elsewhere(const Vip& vip) {
    (void)vip;
    return std::vector<vips::Elsewhere>{};
  }
  // One whole Ethernet frame out of `ifindex` (GARP or unsolicited NA).
  virtual std::error_code send_frame(int ifindex, std::span<const uint8_t> frame) = 0;
};

}  // namespace vrrp
