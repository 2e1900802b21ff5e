// The instance's packets: adverts out (RFC 5798 §5, RFC 3768 for v2), GARP
// and unsolicited NA for its VIPs, and received datagrams through the pure
// intake (vrrp/intake.h) to the state machine. The rest of the engine is in
// engine.cpp, the VIPs in engine_vips.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "vrrp/engine.h"
#include "vrrp/frame.h"
#include "vrrp/garp.h"

namespace vrrp {

using namespace std::chrono_literals;

void Engine::send_advert(uint8_t priority) {
  if (!channel_ || !src_) return;
  Advert a;
  a.version = uint8_t(cfg_.version);
  a.vrid = uint8_t(cfg_.virtual_router_id);
  a.priority = priority;
  for (const auto& v : vips_) a.addresses.push_back(v.address);
  if (cfg_.version == 2) {
    a.adver_int = uint16_t(cfg_.advert_int.count() / 1000);  // RFC 3768 §5.3.7: seconds
    a.auth_type = uint8_t(auth_.type);
    if (auth_.type == AuthType::pass)
      std::copy_n(auth_.password.begin(), std::min<std::size_t>(auth_.password.size(), kV2AuthLen),
                  a.auth_data.begin());
  } else {
    a.adver_int = uint16_t(cfg_.advert_int.count() / 10);  // RFC 5798 §5.2.7: centiseconds
  }
  EncodeOpts o;
  o.family = family_;
  o.src = *src_;
  o.v3_ipv4_form = cfg_.checksum == cfg::ChecksumForm::rfc9568 ? ChecksumForm::message_only
                                                               : ChecksumForm::pseudo_header;
  bool any_ok = false;
  std::error_code failed;
  auto send_to = [&](const IpAddress& dst) {
    o.dst = dst;  // in the v3 pseudo-header: one encoding per destination
    auto msg = encode(a, o);
    if (auto ec = channel_->send(*src_, dst, msg)) {
      ++counters_.send_errors;
      failed = ec;
      // A link that just went down fails every send; FAULT follows from the
      // link event, so one failed send is not worth more than a debug line.
      // Sends failing for good are sent_result's business.
      spdlog::debug("vrrp {}: advert to {} not sent: {}", cfg_.name, dst.to_string(), ec.message());
    } else {
      any_ok = true;
      ++counters_.adverts_sent;
    }
  };
  if (cfg_.unicast) {
    for (const auto& p : peers_) send_to(p);
  } else {
    send_to(family_ == Family::ipv4 ? kVrrpGroupV4 : kVrrpGroupV6);
  }
  if (!any_ok && !failed) return;  // no peer to send to
  sent_result(any_ok, failed, priority);
}

void Engine::sent_result(bool ok, std::error_code failed, uint8_t priority) {
  send_result_ = ok;
  if (ok) {
    if (!send_error_.empty())
      spdlog::info("vrrp {}: adverts are sent again ({} failed before)", cfg_.name,
                   counters_.advert_send_failures);
    send_error_.clear();
    send_log_ = {};
    return;
  }
  ++counters_.advert_send_failures;
  send_error_ = failed.message();
  // Nobody hears this MASTER: a peer takes the VIPs too after its
  // Master_Down_Interval (two nodes answer ARP), unless the peer is dead.
  // The fsm gives the VIPs up once it hears that peer as MASTER
  // (fsm.cpp mute_master_rx). At once, then once a minute with the count.
  // A link going down fails sends too, but that is FAULT already (and its
  // priority-0 advert is the only one): not logged here.
  if (priority == fsm::kStopPriority && vars_.state != fsm::State::master) return;
  const auto held = send_log_.due(Clock::now(), 60s);
  if (!held) return;
  spdlog::error("vrrp {}: {} adverts cannot be sent on {}: {} (an OUTPUT firewall rule for protocol 112?); "
                "no peer hears us: the VIPs stay here until another MASTER is heard for Master_Down_Interval{}",
                cfg_.name, fsm::to_string(vars_.state), cfg_.interface, send_error_,
                *held ? " (+" + std::to_string(*held) + " more failed since the last message)" : std::string());
}

void Engine::garp_round() {
  for (const auto& v : vips_) {
    // A GARP for an address the kernel has not confirmed would point hosts
    // at a MAC that does not answer for it (engine_vips.cpp sends the burst
    // once a retried add succeeds).
    if (!vip_present(v)) continue;
    // The VIP's own device's MAC when it lives elsewhere than the instance
    // interface (keepalived's "dev" option).
    MacAddress mac = link_.mac;
    if (v.ifindex != link_.ifindex)
      if (auto l = env_.kernel.link(v.device)) mac = l->mac;
    std::vector<uint8_t> frame;
    if (v.address.family == Family::ipv4) {
      auto g = build_garp(mac, v.address);
      frame.assign(g.begin(), g.end());
    } else {
      // RFC 5798 §6.4.1: an unsolicited NA per IPv6 VIP, from our link-local.
      if (!src_) continue;
      frame = build_na_frame(mac, *src_, v.address);
    }
    if (env_.kernel.send_frame(v.ifindex, frame)) ++counters_.send_errors;
    else ++counters_.garp_sent;
  }
}

void Engine::drop(const char* reason, uint64_t& counter, const IpAddress* from) {
  ++counter;
  // Rate-limited: a flood of junk must not flood the log (one line per 10 s
  // with the number of drops since the last line).
  const auto held = drop_log_.due(Clock::now(), 10s);
  if (!held) return;
  spdlog::warn("vrrp {}: dropped a packet{}: {}{}", cfg_.name, from ? " from " + from->to_string() : "", reason,
               *held ? " (+" + std::to_string(*held) + " more drops since the last message)" : std::string());
}

void Engine::own_address(const Advert& a) {
  ++drops_.own_address;
  // Logged at the first, then at most once a minute with the count: a
  // network that reflects every advert would otherwise fill the log.
  const auto held = own_log_.due(Clock::now(), 60s);
  if (!held) return;
  // Only a MASTER sends adverts: ours, reflected, carry our priority. Any
  // other is another router with our address, and neither of us hears the
  // other (two MASTERs if both are).
  const bool ours = vars_.state == fsm::State::master && a.priority == vars_.priority;
  const std::string more = *held ? " (+" + std::to_string(*held) + " more since the last message)" : std::string();
  if (ours)
    spdlog::warn("vrrp {}: our own adverts come back to us on {} (from {}, priority {}): the network reflects "
                 "them (a bond, a virtual switch); dropped, counted in drops.own_address{}",
                 cfg_.name, cfg_.interface, src_ ? src_->to_string() : "?", a.priority, more);
  else
    spdlog::error("vrrp {}: another router on {} sends adverts for VRID {} from our own address {} (priority {}, "
                  "we are {} at {}): a duplicate address? Its adverts are dropped (drops.own_address), so neither "
                  "of us hears the other: give each node its own address{}",
                  cfg_.name, cfg_.interface, a.vrid, src_ ? src_->to_string() : "?", a.priority,
                  fsm::to_string(vars_.state), vars_.priority, more);
}

void Engine::on_datagram(const Received& rx) {
  // Not before launch(): a reload opens a new instance's socket while the
  // old instance still runs (Service::reload).
  if (!started_ || stopped_) return;
  IntakeConfig c;
  c.family = family_;
  c.auth = auth_;
  c.expect = {uint8_t(cfg_.virtual_router_id), uint8_t(cfg_.version), uint16_t(cfg_.advert_int.count() / 1000),
              vip_addresses_};
  c.self = src_;
  c.unicast = cfg_.unicast;
  c.peers = peers_;
  const IntakeDecision d = classify(rx, c);
  using Kind = IntakeDecision::Kind;
  const IpAddress* from = d.src ? &*d.src : nullptr;
  if (d.owner_lists_other_addresses) misconfigured(*d.src, *d.advert, d.intake, &counters_.owner_address_mismatch);
  switch (d.kind) {
    case Kind::drop: drop(to_string(d.reason).data(), counter(drops_, d.reason), from); return;
    case Kind::other_vrid: ++counters_.other_vrid; return;  // another router's business
    case Kind::misconfigured: misconfigured(*d.src, *d.advert, d.intake, &counter(drops_, d.reason)); return;
    case Kind::own: own_address(*d.advert); return;
    case Kind::accept: break;
  }
  const Advert& a = *d.advert;
  ++counters_.adverts_received;
  last_peer_ = d.src;
  if (a.version == 3) peer_checksum_form_ = a.checksum_form;
  fsm::Duration mai = std::chrono::milliseconds(a.version == 3 ? a.adver_int * 10 : a.adver_int * 1000);
  feed(fsm::AdvertReceived{a.priority, *d.src, mai});
}

}  // namespace vrrp
