#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into OUTDIR/<target>/.

  fuzz_vrrp_decode        the VRRP datagrams of tests/fixtures/vrrp/*.pcap (IPv4
                          header + message, behind the target's mode byte), the
                          v3 ones also re-checksummed without the pseudo-header,
                          and one VRRPv3 IPv6 advert built here
  fuzz_cfg_load           tests/fixtures/config/**/*.yaml, packaging/vipproxy.yaml
  fuzz_import_haproxy     tests/fixtures/{guide,import}/*haproxy*.cfg
  fuzz_import_keepalived  tests/fixtures/{guide,import}/*keepalived*.conf
  fuzz_http_check_reply   fuzz/seeds/http_check_reply/* (Patroni-style replies) and
                          tests/fixtures/patroni/*.http (captured during a postmaster crash),
                          each as after GET and after HEAD, in 1- and 128-byte pieces

usage: seeds.py SOURCE_DIR OUTDIR
"""
import glob
import hashlib
import os
import struct
import sys

src, out = sys.argv[1], sys.argv[2]


def put(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def pcap_frames(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def with_checksum(msg, c):
    return msg[:6] + struct.pack("!H", c) + msg[8:]


for path in sorted(glob.glob(os.path.join(src, "tests/fixtures/vrrp/*.pcap"))):
    for frame in pcap_frames(path):
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 112:
            continue
        ip = frame[14:]
        put("fuzz_vrrp_decode", b"\x00" + ip)
        put("fuzz_vrrp_decode", b"\x01" + ip)
        hl = (ip[0] & 0x0f) * 4
        msg = ip[hl:]
        if msg[0] >> 4 == 3:  # the RFC 9568 form: checksum over the message alone
            alt = with_checksum(msg, csum(with_checksum(msg, 0)))
            put("fuzz_vrrp_decode", b"\x00" + ip[:hl] + alt)

# VRRPv3 over IPv6: fe80::1 -> ff02::12, vrid 51, prio 100, 1 s, one address.
src6 = bytes.fromhex("fe800000000000000000000000000001")
dst6 = bytes.fromhex("ff020000000000000000000000000012")
addr6 = bytes.fromhex("20010db8000000000000000000000160")
msg = bytes([0x31, 51, 100, 1, 0x00, 100, 0, 0]) + addr6
pseudo = src6 + dst6 + struct.pack("!I", len(msg)) + b"\0\0\0\x70"
put("fuzz_vrrp_decode", b"\x02" + src6 + dst6 + b"\xff" + with_checksum(msg, csum(pseudo + msg)))

for pattern in ("tests/fixtures/config/**/*.yaml", "packaging/*.yaml", "docs/**/*.yaml"):
    for path in glob.glob(os.path.join(src, pattern), recursive=True):
        with open(path, "rb") as f:
            put("fuzz_cfg_load", f.read())

for kind, pattern in (("haproxy", "*haproxy*.cfg"), ("keepalived", "*keepalived*.conf")):
    for d in ("tests/fixtures/guide", "tests/fixtures/import"):
        for path in glob.glob(os.path.join(src, d, pattern)):
            with open(path, "rb") as f:
                put("fuzz_import_" + kind, f.read())

for path in glob.glob(os.path.join(src, "fuzz/seeds/http_check_reply/*")) + \
        glob.glob(os.path.join(src, "tests/fixtures/patroni/*.http")):
    with open(path, "rb") as f:
        reply = f.read()
    for control in (0x00, 0x01, 0xfe, 0xff):
        put("fuzz_http_check_reply", bytes([control]) + reply)
