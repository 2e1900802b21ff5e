// Tiny reader for classic pcap files (not pcapng), enough for the golden
// vectors in tests/fixtures/vrrp: both byte orders, micro- or nanosecond
// timestamps. Throws std::runtime_error on anything it does not understand,
// so a damaged fixture fails the test loudly instead of yielding 0 packets.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace pcap {

struct Packet {
  std::chrono::nanoseconds ts;   // since the epoch
  uint32_t orig_len = 0;         // length on the wire
  std::vector<uint8_t> data;     // captured bytes (caplen)
};

struct File {
  uint32_t linktype = 0;         // 1 = Ethernet
  std::vector<Packet> packets;
};

inline File read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (b.size() < 24) throw std::runtime_error(path + ": shorter than a pcap header");
  bool swap = false, nano = false;
  const uint32_t magic = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  switch (magic) {
    case 0xa1b2c3d4: break;
    case 0xd4c3b2a1: swap = true; break;
    case 0xa1b23c4d: nano = true; break;
    case 0x4d3cb2a1: swap = nano = true; break;
    default: throw std::runtime_error(path + ": not a classic pcap file");
  }
  auto u32 = [&](std::size_t off) {
    uint32_t le = uint32_t(b[off]) | uint32_t(b[off + 1]) << 8 | uint32_t(b[off + 2]) << 16 |
                  uint32_t(b[off + 3]) << 24;
    if (!swap) return le;
    return (le >> 24) | ((le >> 8) & 0xff00) | ((le << 8) & 0xff0000) | (le << 24);
  };
  File f;
  f.linktype = u32(20);
  std::size_t off = 24;
  while (off < b.size()) {
    if (b.size() - off < 16) throw std::runtime_error(path + ": truncated record header");
    const uint32_t sec = u32(off), frac = u32(off + 4), caplen = u32(off + 8), len = u32(off + 12);
    off += 16;
    if (b.size() - off < caplen) throw std::runtime_error(path + ": truncated packet");
    Packet p;
    p.ts = std::chrono::seconds(sec) +
           (nano ? std::chrono::nanoseconds(frac) : std::chrono::nanoseconds(uint64_t(frac) * 1000));
    p.orig_len = len;
    p.data.assign(b.begin() + off, b.begin() + off + caplen);
    off += caplen;
    f.packets.push_back(std::move(p));
  }
  return f;
}

}  // namespace pcap
