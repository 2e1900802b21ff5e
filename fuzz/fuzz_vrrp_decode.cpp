// VRRP receive path: vrrp::parse_ipv4 then vrrp::decode, as the raw socket
// reader does. Invariant: an accepted advertisement re-encodes to exactly the
// bytes it was decoded from, with the checksum form it was accepted with.
//
// Input: one mode byte, then the datagram.
//   mode % 3 == 0: IPv4 datagram (IP header + VRRP), no authentication
//   mode % 3 == 1: IPv4 datagram, PASS authentication "BacChaME" (the fixtures')
//   mode % 3 == 2: IPv6: 16 bytes src, 16 bytes dst, 1 byte hop limit, message
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "vrrp/codec.h"
#include "vrrp/frame.h"

namespace {

void check_roundtrip(std::span<const uint8_t> message, const vrrp::RxMeta& meta,
                     const vrrp::AuthExpect& auth) {
  auto r = vrrp::decode(message, meta, auth);
  if (!r) {
    // Every refusal has a reason the drop counters and logs can name.
    const auto why = vrrp::to_string(r.error());
    if (why.empty() || why == "unknown") {
      std::fprintf(stderr, "decode error %d has no name\n", static_cast<int>(r.error()));
      std::abort();
    }
    return;
  }
  if (meta.ip_payload_len != 0) message = message.first(meta.ip_payload_len);
  vrrp::EncodeOpts opts;
  opts.family = meta.family;
  opts.src = meta.src;
  opts.dst = meta.dst;
  opts.v3_ipv4_form = r->checksum_form;
  const auto again = vrrp::encode(*r, opts);
  if (again.size() != message.size() || !std::equal(again.begin(), again.end(), message.begin())) {
    std::fprintf(stderr, "re-encoded advert differs: %zu bytes in, %zu bytes out\n", message.size(),
                 again.size());
    std::abort();
  }
  if (r->addresses.size() != r->count) {
    std::fprintf(stderr, "count %u but %zu addresses\n", r->count, r->addresses.size());
    std::abort();
  }
  // The per-instance check of an instance configured exactly like the
  // advert (its VRID, version and interval) must accept whatever decode()
  // accepted.
  if (auto m = vrrp::check_instance(*r, r->vrid, r->version, r->adver_int); m != vrrp::InstanceMismatch::none) {
    std::fprintf(stderr, "check_instance refused a matching advert: %.*s\n", static_cast<int>(vrrp::to_string(m).size()),
                 vrrp::to_string(m).data());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  std::span<const uint8_t> in(data + 1, size - 1);
  if (mode < 2) {
    vrrp::AuthExpect auth;
    if (mode == 1) {
      auth.type = vrrp::AuthType::pass;
      auth.password = "BacChaME";
    }
    auto ip = vrrp::parse_ipv4(in);
    if (!ip.header) return 0;
    const auto& h = *ip.header;
    if (h.header_len < 20 || h.total_len < h.header_len || h.payload.size() != h.total_len - h.header_len ||
        h.payload.data() < in.data() || h.payload.data() + h.payload.size() > in.data() + in.size()) {
      std::fprintf(stderr, "parse_ipv4: inconsistent header (hl %zu, tl %zu, payload %zu, buffer %zu)\n",
                   h.header_len, h.total_len, h.payload.size(), in.size());
      std::abort();
    }
    check_roundtrip(h.payload, h.rx_meta(), auth);
    // Also the whole buffer as a message (ip_payload_len 0: use all of it).
    check_roundtrip(h.payload, vrrp::RxMeta{vrrp::Family::ipv4, h.src, h.dst, h.ttl, 0}, auth);
  } else {
    if (in.size() < 33) return 0;
    vrrp::RxMeta meta;
    meta.family = vrrp::Family::ipv6;
    meta.src = vrrp::IpAddress::v6(std::span<const uint8_t, 16>(in.data(), 16));
    meta.dst = vrrp::IpAddress::v6(std::span<const uint8_t, 16>(in.data() + 16, 16));
    meta.ttl = in[32];
    check_roundtrip(in.subspan(33), meta, {});
  }
  return 0;
}
