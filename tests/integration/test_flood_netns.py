#!/usr/bin/python3
# Over 500 lines: one namespace lab for every flood case, with the crafting, pacing and monitors they share.
"""Floods against a VRRP pair in network namespaces (issue 6, Faults): "a
flood of malformed VRRP packets (10k/s) and of half-open connections to the
listener: elections and established sessions carry on".

Topology (netns.Lab, 10.88.71.0/24 on one bridge, names vpt<pid>-*):

    a         10.88.71.151  vipproxy, VRRPv3 VRID 51 priority 100, advert_int 100 ms,
                            proxy 0.0.0.0:5433 -> echo server 127.0.0.1:7000
    b         10.88.71.152  the same, priority 50
    client    10.88.71.10   a checksummed echo stream and new connections to VIP:5433
    attacker  10.88.71.66   the flooders (run with `ip netns exec`, never in the root namespace)
    VIP       10.88.71.160

  (a) ~10k VRRP packets/s for 12 s from the attacker: the real keepalived
      captures of tests/fixtures/vrrp/ mutated one validation rung at a
      time (checksum, version, type, TTL, length, interval, truncated, VRID,
      v2 with PASS / without auth), random bytes, and well-formed adverts from
      a non-peer with a priority below the master's, to 224.0.0.18 and (one
      cycle in four) unicast to a node. Asserted: the achieved rate >= 8k/s;
      a stays MASTER and b BACKUP on every poll (50 ms) and neither counts a
      transition; the VIP is on a only, throughout; each node's counters
      (vipproxy_vrrp_drops_total by reason, other_vrid, adverts_received in
      /metrics) grew by what it was sent, reason by reason, with what the
      kernel dropped at the socket (/proc/net/raw) accounted and under 1 %;
      the master answers the lower adverts at most once a second (no advert
      or GARP amplification); the daemons' CPU stays under 60 % of a core; an
      echo stream through the VIP never stalls 1 s and comes back intact.
  (b) raw SYNs (IP_HDRINCL) at ~25k/s for 10 s to VIP:5433 from spoofed
      sources 10.88.72.0/24 that a routes into a veth whose peer is down, so
      its SYN-ACKs vanish and the handshakes never complete (the listen queues
      fill with half-open requests). SYN cookies stay as Linux ships them
      (net.ipv4.tcp_syncookies=1 in a's namespace; checked and reported).
      Asserted: the SYN queues hold > 1000 half-open requests and cookies are
      sent; an established echo stream keeps flowing and is intact; a new
      connection from the client every 100 ms succeeds; /status answers
      within 1 s on every poll; VRRP state and the VIP do not move.
  (c) both floods at once for 12 s, with two planned switchovers in the
      middle (a reload raises b's priority to 150: b preempts; lowers it back
      to 50: a preempts). Asserted: each election completes (deadline 5 s);
      outside the switchovers the VIP is on exactly the expected node; each
      node counted the flood; echo streams to each node's own address stay
      intact; new sessions through the VIP fail only while it moves; /status
      answers within 1 s; the adverts on the link (a's and b's together,
      captured by tcpdump in the client namespace) never pause 150 ms
      (200 ms under a sanitizer: MAX_ADVERT_GAP).
  (d) (a) again for 8 s with keepalived 2.2.7, the real interop peer, as b:
      vipproxy a stays MASTER, keepalived never logs "Entering MASTER STATE".
      Without the zero-interval adverts, which keepalived itself falls for
      (KEEPALIVED_FALLS_FOR).
  In (a), (b) and (d) the master's own adverts never pause 150 ms either
  (idem): the VRRP socket is read a bounded batch at a time
  (vrrp/fd_reader.h), so the Adver_Timer runs on time however long a flood
  keeps the socket full. The bound is on the daemon's part of a silence:
  the sending control thread is sampled every 5 ms and a SCHED_FIFO canary
  runs on each CPU (thread_trace.py); what the thread spent waiting for a
  CPU, or the machine spent running nothing of ours, is the machine's
  (silences()). A backup that takes over in a silence the machine caused,
  as long as its Master_Down_Interval, does what RFC 5798 §6.4.2 asks: the
  takeover and its return are allowed there (excused()), and only there.
  The clean-clone CI machine paused the master's adverts 780 ms once in
  (a), and its streams and /status ~600 ms in (b) of the same run.
  keepalived runs with -G (no syslog): the lab has no syslog daemon, and
  glibc's syslog() then writes each line to /dev/console, on the development
  VM an emulated serial port whose interrupt one vCPU serves a byte at a
  time. keepalived logs every junk packet of the flood (~1000 lines/s), and
  that vCPU stopped running anything else for 0.1-8 s at a time: whatever
  was current there (our master's control thread, the echo stream) froze,
  and (d) failed in about half the runs (docs/lab-notes.md, "The console is
  a serial port"). The timed cases log the vCPU freezes they see
  (vcpu_watch.py) next to the longest silences, so the next stall of that
  kind is told from a fault of the daemon at once.
  The daemons run at the normal scheduler, as most users run them;
  daemon_realtime_test and test_systemd_nspawn test vrrp_rt_priority.

    VIPPROXY_BIN=build/vipproxy /usr/bin/python3 tests/integration/test_flood_netns.py
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
VIPPROXY = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE_DIR, "build", "vipproxy"))
# Real keepalived captures, copied into the repo (CI runs on a clean clone).
VECTORS = os.path.join(SOURCE_DIR, "tests", "fixtures", "vrrp")
PY = "/usr/bin/python3"
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
CLK = os.sysconf("SC_CLK_TCK")

OCTET = 71
NET = f"10.88.{OCTET}"
SPOOF_NET = "10.88.72"      # SYN sources: routed into a dead veth on a
HOSTS = {"a": 151, "b": 152, "client": 10, "attacker": 66}
VIP = f"{NET}.160"
GROUP = "224.0.0.18"
VRID = 51
PORT = 5433
ECHO_PORT = 7000
ADMIN_PORT = 8405

# Rates can be raised for a stress run (VIPPROXY_FLOOD_VRRP_RATE=100000 ...);
# the minimum asserted follows at 80 % of the target.
VRRP_RATE = int(os.environ.get("VIPPROXY_FLOOD_VRRP_RATE", 10000))
SYN_RATE = int(os.environ.get("VIPPROXY_FLOOD_SYN_RATE", 25000))
VRRP_SECONDS, VRRP_MIN_RATE = 12.0, 0.8 * VRRP_RATE
SYN_SECONDS, SYN_MIN_RATE = 10.0, min(10000, 0.8 * SYN_RATE)
KEEPALIVED_SECONDS = 8.0
# What keepalived 2.2.7 itself does not survive, left out when it is the peer:
# a v3 advert with Max Adver Int 0 and a priority >= its own is taken as the
# master's ("advertisement interval updated from 100ms to 0ms by master"), its
# Master_Down_Interval shrinks to the skew time and it goes MASTER beside the
# real one (95 split brains in 8 s, measured). vipproxy drops it (bad_interval).
KEEPALIVED_FALLS_FOR = ["bad_interval"]
ADVERTS_PER_S = 10     # advert_int 100 ms
# The longest silence allowed between adverts on the link: half an interval
# beyond one. Under a sanitizer (scripts/test's ASan stage; CTest sets
# VIPPROXY_SANITIZED) the daemons spend 2-3x the CPU per junk packet and the
# 2-core machine runs out: CI saw 156 ms there with the control threads
# waiting 4.4 s for a CPU in all (load 1.75). There the bound is two
# intervals, one advert late but never two, still a whole interval short of
# what a backup waits (RFC 5798 §6.4.2: 3 x 100 ms + skew). The release
# build's run holds the daemons to 150 ms.
SANITIZED = bool(os.environ.get("VIPPROXY_SANITIZED"))
MAX_ADVERT_GAP = 0.200 if SANITIZED else 0.150
# A backup that took over in a silence the machine caused (excused()) is
# back to BACKUP, without the VIP, this long after the master is heard again.
TAKEOVER_SETTLE = 1.0
GARP_BURST = 5         # garp.master_repeat default
OWN = ("transitions", "adverts_sent", "garp_sent", "kernel_drops")  # what a node does, not what it hears


# ---------------------------------------------------------------------------
# Flooders: `test_flood_netns.py --vrrp-flood JSON` / `--syn-flood JSON`, run
# by the test with `ip netns exec <attacker>`; they write a JSON result file.
# ---------------------------------------------------------------------------
def inet_sum(b, s=0):
    if len(b) % 2:
        b += b"\0"
    s += sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def inet_csum(b, s=0):
    return ~inet_sum(b, s) & 0xffff


def pcap_ipv4_payloads(path):
    """(ip header, VRRP message) of every IPv4 frame of a classic pcap."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    off, out = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0f) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] == 112:
            out.append((ip[:ihl], ip[ihl:total]))
    return out


def vrrp_checksum(msg, src, dst):
    """RFC 5798 §5.2.8 for v3 (IPv4 pseudo-header, as keepalived); v2 message only."""
    m = bytearray(msg)
    m[6:8] = b"\0\0"
    if len(m) >= 1 and m[0] >> 4 == 3:
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 112, len(m))
        return inet_csum(bytes(m), inet_sum(pseudo))
    return inet_csum(bytes(m))


def with_checksum(msg, src, dst):
    m = bytearray(msg)
    if len(m) >= 8:
        struct.pack_into("!H", m, 6, vrrp_checksum(m, src, dst))
    return bytes(m)


def ipv4(src, dst, payload, ttl=255, proto=112, ident=0):
    # Total length and header checksum are filled in by the kernel (raw(7),
    # IP_HDRINCL); we still write them right.
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0xc0, 20 + len(payload), ident, 0, ttl, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", inet_csum(h)) + h[12:] + payload


def vrrp_kinds(src, dst, vip, rnd):
    """name -> (IP TTL, VRRP message, counter the receiving instance should bump).

    Built from keepalived's own adverts (vrrpv3-adverts-100ms.pcap,
    vrrpv2-pass-adverts.pcap) with the lab's VIP, each mutated on one rung of
    the decoder (vrrp/codec.cpp) or the per-instance checks (vrrp/engine.cpp).
    A counter of None means "some drop reason" (random bytes)."""
    _, v3cap = pcap_ipv4_payloads(os.path.join(VECTORS, "vrrpv3-adverts-100ms.pcap"))[0]
    _, v2cap = pcap_ipv4_payloads(os.path.join(VECTORS, "vrrpv2-pass-adverts.pcap"))[0]
    vip_raw = socket.inet_aton(vip)
    v3 = bytearray(v3cap[:8] + vip_raw)      # one address: the VIP
    v2 = bytearray(v2cap[:8] + vip_raw + v2cap[12:20])  # + "BacChaME"

    def mut3(**kw):
        m = bytearray(v3)
        for off, val in kw.get("set", {}).items():
            m[off] = val
        m = m[:kw["cut"]] if "cut" in kw else m
        return bytes(m) if kw.get("raw") else with_checksum(m, src, dst)

    good = with_checksum(v3, src, dst)
    bad_sum = bytearray(good)
    bad_sum[6] ^= 0x5a
    v2_pass = with_checksum(v2, src, dst)
    v2_none = bytearray(v2)
    v2_none[4] = 0
    return {
        "replayed_capture": (255, v3cap, "bad_checksum"),  # its pseudo-header names 10.88.1.151 -> the group
        "bad_checksum": (255, bytes(bad_sum), "bad_checksum"),
        "bad_version": (255, mut3(set={0: 0x11}), "bad_version"),
        "bad_type": (255, mut3(set={0: 0x32}), "bad_type"),
        "bad_ttl": (64, good, "bad_ttl"),
        "bad_length": (255, mut3(set={3: 3}), "bad_length"),           # count 3, one address
        "bad_interval": (255, mut3(set={4: 0, 5: 0}), "bad_interval"),
        "truncated": (255, good[:7], "too_short"),
        "truncated_addr": (255, mut3(cut=10), "bad_length"),
        "wrong_vrid": (255, mut3(set={1: VRID + 1}), "other_vrid"),
        "v2_pass": (255, v2_pass, "auth_type_mismatch"),                # our v3 instance expects no auth
        "v2_no_auth": (255, with_checksum(v2_none, src, dst), "version_mismatch"),
        "random": (255, bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 48))), None),
        # Well-formed, from a non-peer, priority below the master's (100):
        # the master discards them (RFC 5798 §6.4.3) but for one answer a
        # second (advert + GARP, vrrp/fsm.cpp); the backup (50) discards the
        # lower ones and, for 60, follows that "master" without moving.
        "low_priority": (255, mut3(set={2: rnd.randrange(1, 50)}), "adverts_received"),
        "mid_priority": (255, mut3(set={2: 60}), "adverts_received"),
    }


def paced_send(packets, rate, seconds):
    """Sends `packets` ((bytes, address) pairs) round-robin from a raw socket
    on eth0 at `rate` per second for `seconds`. Returns (sent, errors, seconds
    taken, CPU seconds, per-packet send counts)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    counts = [0] * len(packets)
    errors, sent, i = 0, 0, 0
    t0 = time.monotonic()
    cpu0 = time.process_time()
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= seconds:
            break
        # Catch up in bounded batches (5 ms worth), so a flooder that cannot
        # keep the pace still stops on time and reports the rate it reached.
        due = min(int(elapsed * rate), sent + max(1, rate // 200))
        while sent < due:
            pkt, addr = packets[i]
            try:
                s.sendto(pkt, addr)
                counts[i] += 1
                sent += 1
            except OSError:  # ENOBUFS: not sent, not counted
                errors += 1
                break
            i = (i + 1) % len(packets)
        time.sleep(0.0005)
    s.close()
    return sent, errors, time.monotonic() - t0, time.process_time() - cpu0, counts


def vrrp_flood(cfg):
    src, nodes, rate, seconds = cfg["src"], cfg["nodes"], cfg["rate"], cfg["seconds"]
    rnd = random.Random(cfg.get("seed", 6))
    # One period: every kind to the group three cycles in four, the fourth
    # cycle unicast to each node in turn; random bytes differ in every cycle.
    table = []  # (packet, destination, kind)
    dests = [GROUP] * 3 + [nodes[0]] + [GROUP] * 3 + [nodes[1]]
    for cycle in range(256):
        dst = dests[cycle % len(dests)]
        for kind, (ttl, msg, _) in vrrp_kinds(src, dst, cfg["vip"], rnd).items():
            if kind in cfg.get("skip", ()):
                continue
            table.append((ipv4(src, dst, msg, ttl=ttl), dst, kind))
    sent, errors, took, cpu, counts = paced_send([(pkt, (dst, 0)) for pkt, dst, _ in table], rate, seconds)
    expected = {n: {} for n in nodes}
    kinds = vrrp_kinds(src, GROUP, cfg["vip"], random.Random(0))
    for (pkt, dst, kind), c in zip(table, counts):
        counter = kinds[kind][2] or "random"
        for n in nodes:
            if dst in (GROUP, n):
                expected[n][counter] = expected[n].get(counter, 0) + c
    return {"sent": sent, "seconds": took, "rate": sent / took, "errors": errors,
            "cpu": cpu, "expected": expected, "kinds": sorted(kinds)}


def syn_flood(cfg):
    """SYNs from random sources of cfg["spoof"].0/24 and random ports; each
    packet built once (the checksums are the slow part in Python), then the
    table is replayed with fresh sequence numbers' worth of variety."""
    dst, dport, rate, seconds = cfg["dst"], cfg["port"], cfg["rate"], cfg["seconds"]
    rnd = random.Random(7)
    table = []
    for _ in range(65536):
        src = f"{cfg['spoof']}.{rnd.randrange(1, 255)}"
        sport, seq = rnd.randrange(1024, 65536), rnd.getrandbits(32)
        opts = struct.pack("!BBH", 2, 4, 1460)  # MSS
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (5 + 1) << 4, 0x02, 64240, 0, 0) + opts
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", inet_csum(tcp, inet_sum(pseudo))) + tcp[18:]
        table.append(ipv4(src, dst, tcp, ttl=64, proto=6, ident=rnd.getrandbits(16)))
    with open(cfg["ready"], "w") as f:
        f.write("ready\n")
    sent, errors, took, cpu, _ = paced_send([(pkt, (dst, 0)) for pkt in table], rate, seconds)
    return {"sent": sent, "seconds": took, "rate": sent / took, "errors": errors, "cpu": cpu}


def helper_main():
    mode, cfg = sys.argv[1], json.loads(sys.argv[2])
    result = vrrp_flood(cfg) if mode == "--vrrp-flood" else syn_flood(cfg)
    tmp = cfg["out"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, cfg["out"])


# ---------------------------------------------------------------------------
# The test side
# ---------------------------------------------------------------------------
import netns  # noqa: E402
import testmain  # noqa: E402
from thread_trace import MachineStalls, ThreadTrace  # noqa: E402
from vcpu_watch import VcpuWatch, describe, stamp  # noqa: E402
from netns import in_netns, log, wait_until  # noqa: E402


def runnable_wait(pids):
    """Seconds each daemon's control thread (its main thread) has spent
    runnable but waiting for a CPU (/proc/PID/schedstat, second field). An
    advert gap that comes with a matching wait is the machine's load, not
    the daemon being busy: the message of a failed gap assertion says which."""
    out = {}
    for short, pid in pids.items():
        with open(f"/proc/{pid}/schedstat") as f:
            out[short] = int(f.read().split()[1]) / 1e9
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime, all threads


class Stream:
    """An echo session through ADDR:5433 (the VIP unless told) from the
    client namespace: paced blocks of random bytes (~1.6 MB/s), every byte
    hashed both ways. The echo server answers the client's FIN with "<EOF>",
    so a clean end is visible."""
    BLOCK, PERIOD = 16384, 0.01

    def __init__(self, lab, addr=VIP):
        with in_netns(lab.ns("client")):
            self.s = socket.create_connection((addr, PORT), timeout=5)
        self.s.settimeout(10)
        self.sent, self.recv = hashlib.sha256(), hashlib.sha256()
        self.nsent = self.nrecv = 0
        self.tail = b""
        self.max_gap = 0.0
        self.gap_end = None      # when the longest gap ended (time.time())
        self.max_send = 0.0      # longest sendall(): the send buffer stayed full, the far side stopped reading
        self.max_late = 0.0      # longest oversleep of the writer: this process was off the CPU
        self.error = None
        self.stop = threading.Event()
        self.sending = True
        self.tw = threading.Thread(target=self._write, daemon=True)
        self.tr = threading.Thread(target=self._read, daemon=True)
        self.tw.start()
        self.tr.start()

    def _write(self):
        try:
            nxt = time.monotonic()
            while not self.stop.is_set():
                block = os.urandom(self.BLOCK)
                t = time.monotonic()
                self.max_late = max(self.max_late, t - nxt)
                self.s.sendall(block)
                self.max_send = max(self.max_send, time.monotonic() - t)
                self.sent.update(block)
                self.nsent += len(block)
                nxt += self.PERIOD
                time.sleep(max(0.0, nxt - time.monotonic()))
            self.s.shutdown(socket.SHUT_WR)
        except OSError as e:
            self.error = f"write: {e}"
        finally:
            self.sending = False

    def _read(self):
        last = time.monotonic()
        try:
            while True:
                chunk = self.s.recv(65536)
                now = time.monotonic()
                if self.sending and now - last > self.max_gap:
                    self.max_gap = now - last
                    self.gap_end = time.time()
                last = now
                if not chunk:
                    return
                buf = self.tail + chunk
                self.recv.update(buf[:-5])
                self.nrecv += len(buf[:-5])
                self.tail = buf[-5:]
        except OSError as e:
            self.error = f"read: {e}"

    def finish(self, timeout=20):
        self.stop.set()
        self.tw.join(timeout)
        self.tr.join(timeout)
        # struct tcp_info: tcpi_total_retrans is the u32 at byte 100. A stall
        # with retransmissions is the network's (segments lost); without,
        # an endpoint stopped reading or writing.
        try:
            retrans = struct.unpack_from("I", self.s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
        except OSError:
            retrans = None
        self.s.close()
        return {"sent": self.nsent, "echoed": self.nrecv, "intact": self.sent.digest() == self.recv.digest()
                and self.nsent == self.nrecv and self.tail == b"<EOF>", "max_gap": self.max_gap,
                "error": self.error, "tail": self.tail, "client_retransmits": retrans,
                "gap_end": self.gap_end, "max_send": self.max_send, "max_late": self.max_late}


class NewConnections(threading.Thread):
    """A new session from the client every 100 ms: connect, echo 64 bytes, close."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.ns = lab.ns("client")
        self.stop = threading.Event()
        self.ok, self.failures, self.worst = 0, [], 0.0
        self.attempts = []  # (start, end, ok): when each one ran

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                with in_netns(self.ns):
                    c = socket.socket()
                c.settimeout(5)
                with c:
                    c.connect((VIP, PORT))
                    msg = os.urandom(64)
                    c.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        chunk = c.recv(64)
                        if not chunk:
                            break
                        got += chunk
                if got != msg:
                    raise OSError("echo mismatch")
                self.ok += 1
                self.worst = max(self.worst, time.monotonic() - t0)
                self.attempts.append((t0, time.monotonic(), True))
            except OSError as e:
                self.failures.append(f"{time.monotonic() - t0:.2f}s {e}")
                self.attempts.append((t0, time.monotonic(), False))
            self.stop.wait(0.1)


class Monitor(threading.Thread):
    """Every 50 ms: each node's VRRP state and transition count from /status
    (with its latency), and which node holds the VIP (bind(2) to it succeeds
    only where it is a local address)."""

    def __init__(self, test, with_status=("a", "b")):
        super().__init__(daemon=True)
        self.test = test
        self.with_status = with_status
        self.stop = threading.Event()
        self.samples = []
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            sample = {"t": time.monotonic()}
            for short in ("a", "b"):
                t0 = time.monotonic()
                try:
                    if short not in self.with_status:
                        raise LookupError("no /status")
                    inst = self.test.status(short, timeout=2)["vrrp"][0]
                    sample[short] = (inst["state"], inst["transitions"])
                except LookupError:
                    sample[short] = ("not vipproxy", None)
                except Exception as e:  # noqa: BLE001 - recorded and asserted on
                    self.errors.append(f"{short} /status: {e}")
                    sample[short] = (None, None)
                sample[short + "_latency"] = time.monotonic() - t0
                sample[short + "_vip"] = self.test.holds_vip(short)
            self.samples.append(sample)
            self.stop.wait(0.05)

    def finish(self):
        self.stop.set()
        self.join(10)
        return self.samples


class AdvertTimes:
    """The master's adverts as the link carries them: tcpdump in the client
    namespace with a kernel filter on a's address (so it sees ~10 packets a
    second, not the flood), kernel timestamps, read back after stop(). The
    gaps between them are what a backup's Master_Down_Timer sees (RFC 5798
    §6.4.2: 3 x Master_Adver_Interval + Skew_Time)."""

    def __init__(self, lab, name, *sources):
        self.lab = lab
        self.path = os.path.join(lab.dir, name + ".pcap")
        hosts = " or ".join(f"src host {a}" for a in sources)
        self.proc = lab.spawn(name, "client", ["tcpdump", "-i", "eth0", "-n", "-U", "-w", self.path,
                                                f"ip proto 112 and ({hosts})"])
        wait_until(lambda: "listening on" in lab.logtail(name, 5) or self.proc.poll() is not None, 10,
                   f"{name} listening")
        if self.proc.poll() is not None:
            raise RuntimeError(f"tcpdump exited: {lab.logtail(name)}")

    def stop(self):
        """Returns the capture times (seconds) of the adverts, in order;
        self.sources holds each one's source address (IPv4 over Ethernet)."""
        self.lab.stop(self.proc)
        with open(self.path, "rb") as f:
            data = f.read()
        endian = "<" if struct.unpack("<I", data[:4])[0] in (0xa1b2c3d4, 0xa1b23c4d) else ">"
        nano = struct.unpack(endian + "I", data[:4])[0] == 0xa1b23c4d
        off, times, self.sources = 24, [], []
        while off + 16 <= len(data):
            sec, frac, incl = struct.unpack(endian + "III", data[off:off + 12])
            times.append(sec + frac / (1e9 if nano else 1e6))
            src = data[off + 16 + 26:off + 16 + 30]
            self.sources.append(socket.inet_ntoa(src) if len(src) == 4 else None)
            off += 16 + incl
        return times


def stream_why(st):
    """What a stream's longest gap says about where it stalled."""
    return (f"longest gap ended at {stamp(st['gap_end'])}; longest send {st['max_send'] * 1000:.0f} ms, the "
            f"writer overslept {st['max_late'] * 1000:.0f} ms at most")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def master_down_interval(priority):
    """RFC 5798 §6.1: 3 x Master_Adver_Interval + Skew_Time, at our 100 ms."""
    interval = 1.0 / ADVERTS_PER_S
    return 3 * interval + (256 - priority) * interval / 256


def silences(times, sources, trace, stalls):
    """The silences between adverts on the link: every one as long as
    MAX_ADVERT_GAP, and the longest in any case, longest first. Each is split
    into what the machine owes and what is left, the daemon's own part
    ({t1, t2, gap, own, why}). The machine owes the larger of: the sending
    node's control thread waiting for a CPU or its vCPU not run
    (ThreadTrace), and the time no CPU ran anything of ours (MachineStalls;
    thread_trace.py says why both). The node whose advert opened a silence
    is the one that owed the next (a master sends until it hears another)."""
    pairs = list(enumerate(zip(times, times[1:])))
    if not pairs:
        return [{"t1": None, "t2": None, "gap": float("inf"), "own": float("inf"),
                 "why": "fewer than two adverts captured"}]
    longest = max(pairs, key=lambda p: p[1][1] - p[1][0])
    chosen = [p for p in pairs if p[1][1] - p[1][0] >= MAX_ADVERT_GAP or p is longest]
    out = []
    for i, (t1, t2) in chosen:
        gap = t2 - t1
        node = next((s for s, h in HOSTS.items() if f"{NET}.{h}" == sources[i]), None)
        if node not in trace.threads:
            out.append({"t1": t1, "t2": t2, "gap": gap, "own": gap, "why": f"opened by {sources[i]}, not traced"})
            continue
        e = trace.explain(node, t1, t2, stalls, due=t1 + 1.0 / ADVERTS_PER_S)
        machine = max(ThreadTrace.machine_share(e), stalls.everywhere(t1, t2))
        out.append({"t1": t1, "t2": t2, "gap": gap, "own": gap - machine, "why": (
            f"from {stamp(t1)} to {stamp(t2)}, opened by {node}, whose control thread was "
            f"{ThreadTrace.describe(e)}; {stalls.describe(t1, t2)}")})
    return sorted(out, key=lambda x: -x["gap"])


def excused(sil, master_down):
    """Monotonic-clock windows in which a backup rightly took over: the link
    was silent for its Master_Down_Interval, and the machine, not the
    daemon, owed that silence (own part under MAX_ADVERT_GAP). The window
    runs on for TAKEOVER_SETTLE after the master is heard again (the
    backup yields at its next advert; /status and the VIP follow)."""
    off = time.time() - time.monotonic()
    return [(x["t1"] - off, x["t2"] - off + TAKEOVER_SETTLE) for x in sil
            if x["t1"] is not None and x["gap"] >= master_down and x["own"] < MAX_ADVERT_GAP]


class LinkWatch:
    """The adverts on the link during a case and who owed each silence in
    them: a capture of `senders`' adverts (AdvertTimes), their control
    threads traced (ThreadTrace: `pids`, the daemons by node) and the CPU
    canaries (MachineStalls). After stop(): `count` adverts, `silences`
    (silences()), the `longest` and the `worst` (largest own part) of them,
    and the `excuses` a backup had to take over (excused())."""

    def __init__(self, test, name, senders, pids):
        self.adverts = AdvertTimes(test.lab, name, *(f"{NET}.{HOSTS[s]}" for s in senders))
        self.trace = ThreadTrace({s: (pid, pid) for s, pid in pids.items()})
        self.trace.start()
        self.stalls = test.machine_stalls()

    def stop(self):
        """Stops the capture, the trace and the canaries and judges the
        silences. The backup whose takeovers may be excused is at the lowest
        priority any backup has in these cases, b's 50."""
        times = self.adverts.stop()
        self.trace.stop()
        self.stalls.stop()
        self.count = len(times)
        self.silences = silences(times, self.adverts.sources, self.trace, self.stalls)
        self.longest = self.silences[0]
        self.worst = max(self.silences, key=lambda x: x["own"])
        self.excuses = excused(self.silences, master_down_interval(50))
        return self


class FloodNetnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(VIPPROXY):
            raise RuntimeError(f"vipproxy binary not found at {VIPPROXY} (set VIPPROXY_BIN)")
        cls.t_start = time.monotonic()
        cls.lab = netns.Lab(third_octet=OCTET)
        cls.results = {}
        for short, host in HOSTS.items():
            cls.lab.add_node(short, host)
        # a's SYN-ACKs to the spoofed sources go into a veth whose peer is
        # never up (dropped at transmit, no ARP): the handshakes stay half
        # open like those of a real SYN flood from unanswering addresses.
        # Reverse-path filtering off (the kernel default in a new namespace;
        # set so it cannot depend on the host) so the SYNs are accepted.
        # The same on b, which holds the VIP for a while in (c).
        for node in ("a", "b"):
            cls.lab.sh(node, ["ip", "link", "add", "bh0", "type", "veth", "peer", "name", "bh1"])
            cls.lab.sh(node, ["ip", "link", "set", "bh0", "arp", "off", "up"])
            cls.lab.sh(node, ["ip", "route", "add", f"{SPOOF_NET}.0/24", "dev", "bh0"])
            for k in ("all", "default", "eth0"):
                cls.lab.sh(node, ["sysctl", "-qw", f"net.ipv4.conf.{k}.rp_filter=0"])
        cls.daemons = {}
        for short, prio in (("a", 100), ("b", 50)):
            cls.lab.echo_backend(short, ECHO_PORT, f"echo-{short}")
            path = os.path.join(cls.lab.dir, f"vipproxy-{short}.yaml")
            with open(path, "w") as f:
                f.write(cls.config(short, prio))
            cls.daemons[short] = cls.lab.spawn(f"vipproxy-{short}", short, [VIPPROXY, "--config", path])
        log(f"lab: namespaces {cls.lab.namespaces}, VIP {VIP}, logs in {cls.lab.dir}")

    @classmethod
    def tearDownClass(cls):
        for k, v in cls.results.items():
            log(f"measured {k}: {v}")
        log(f"run time {time.monotonic() - cls.t_start:.1f}s")
        cls.lab.close()

    @staticmethod
    def config(short, priority):
        return "\n".join([
            f"node: {short}", "log_level: info", "threads: 2",
            "admin:", f"  listen: 127.0.0.1:{ADMIN_PORT}",
            "proxies:", "  - name: pg", f"    listen: 0.0.0.0:{PORT}", "    check:", "      type: tcp",
            "      interval: 200ms", "      fast_interval: 100ms", "      timeout: 500ms", "      rise: 1",
            "      fall: 2", "    backends:", "      - name: local", f"        address: 127.0.0.1:{ECHO_PORT}",
            "vrrp:", "  - name: VI_1", "    interface: eth0", f"    virtual_router_id: {VRID}",
            f"    priority: {priority}", "    version: 3", "    advert_int: 100ms",
            "    virtual_ipaddresses:", f"      - {VIP}/24"]) + "\n"

    # ---- helpers ----
    def status(self, short, timeout=2):
        with in_netns(self.lab.ns(short)):
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/status", timeout=timeout) as r:
                return json.load(r)

    def metrics(self, short):
        with in_netns(self.lab.ns(short)):
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN_PORT}/metrics", timeout=2) as r:
                return r.read().decode()

    def vrrp_counters(self, short):
        """drops by reason from /metrics, plus other_vrid and adverts_received."""
        text = self.metrics(short)
        out = {m.group(1): int(float(m.group(2))) for m in re.finditer(
            r'^vipproxy_vrrp_drops_total\{instance="VI_1",reason="(\w+)"\} (\S+)$', text, re.M)}
        for name in ("other_vrid", "adverts_received", "transitions", "adverts_sent", "garp_sent"):
            m = re.search(rf'^vipproxy_vrrp_{name}_total\{{instance="VI_1"\}} (\S+)$', text, re.M)
            out[name] = int(float(m.group(1)))
        out["kernel_drops"] = self.raw_drops(short)
        return out

    def raw_drops(self, short):
        """Datagrams the kernel dropped at the node's VRRP raw sockets (receive
        buffer full): /proc/net/raw of its namespace, protocol 112 = 0x70."""
        out = self.lab.sh(short, ["cat", "/proc/net/raw"]).stdout.splitlines()[1:]
        return sum(int(line.split()[-1]) for line in out if line.split()[1].endswith(":0070"))

    def holds_vip(self, short):
        with in_netns(self.lab.ns(short)):
            s = socket.socket()
        with s:
            try:
                s.bind((VIP, 0))
                return True
            except OSError:
                return False

    def steady(self):
        """a MASTER with the VIP, b BACKUP without it, both proxies serving."""
        ia, ib = self.status("a")["vrrp"][0], self.status("b")["vrrp"][0]
        return (ia["state"] == "MASTER" and ib["state"] == "BACKUP" and self.holds_vip("a")
                and not self.holds_vip("b"))

    def setUp(self):
        for short, p in self.daemons.items():
            self.assertIsNone(p.poll(), f"vipproxy on {short} exited:\n{self.lab.logtail('vipproxy-' + short)}")
        wait_until(self.steady, 15, "a MASTER with the VIP, b BACKUP")
        wait_until(lambda: all(b["eligible"] for p in self.status("a")["proxies"] for b in p["backends"]), 10,
                   "a's backend eligible")

    def machine_stalls(self):
        """CPU canaries for one case (thread_trace.MachineStalls), recorded
        by the lab, which stops them if the case does not."""
        return MachineStalls.in_lab(self.lab, VRRP_SECONDS + 60)

    def run_flooder(self, mode, cfg, name):
        cfg["out"] = os.path.join(self.lab.dir, name + ".json")
        cfg["ready"] = cfg["out"] + ".ready"
        p = self.lab.spawn(name, "attacker", [PY, os.path.abspath(__file__), mode, json.dumps(cfg)])
        return p, cfg

    def wait_flooder(self, p, cfg, seconds):
        wait_until(lambda: p.poll() is not None, seconds + 30, f"flooder {cfg['out']} to finish", interval=0.2)
        self.assertEqual(p.returncode, 0, self.lab.logtail(os.path.basename(cfg["out"])[:-5]))
        with open(cfg["out"]) as f:
            return json.load(f)

    def assert_no_flap(self, samples, before, excuses=()):
        """a MASTER with the VIP and b BACKUP without it on every sample, and
        neither changed state, except that b may take over and give back
        (two transitions) in each excused window (excused())."""
        self.assertGreater(len(samples), 20, "the monitor took too few samples")
        for s in samples:
            self.assertEqual(s["a"][0], "MASTER", s)
            self.assertEqual(s["a"][1], before["a"]["transitions"], f"a changed state: {s}")
            if any(w0 <= s["t"] <= w1 for w0, w1 in excuses):
                continue
            self.assertTrue(s["a_vip"] and not s["b_vip"], f"VIP not on exactly a: {s}")
            if "b" in before:
                allowed = 2 * sum(1 for w0, _ in excuses if w0 < s["t"])
                moved = s["b"][1] - before["b"]["transitions"]
                self.assertEqual(s["b"][0], "BACKUP", s)
                self.assertTrue(moved % 2 == 0 and 0 <= moved <= allowed,
                                f"b changed state ({allowed} transitions excused): {s}")

    # ---- (a) ----
    def test_a_malformed_vrrp_flood(self):
        before = {s: self.vrrp_counters(s) for s in ("a", "b")}
        pids = {s: p.pid for s, p in self.daemons.items()}
        stream = Stream(self.lab)
        wait_until(lambda: stream.nrecv > 0, 5, "echo stream through the VIP flowing")
        link = LinkWatch(self, "adverts-a", ["a"], pids)
        mon = Monitor(self)
        mon.start()
        cpu0 = {s: cpu_seconds(pid) for s, pid in pids.items()}
        wait0 = runnable_wait(pids)
        watch = VcpuWatch()
        watch.start()
        t0 = time.monotonic()
        p, cfg = self.run_flooder("--vrrp-flood", {
            "src": f"{NET}.{HOSTS['attacker']}", "vip": VIP, "rate": VRRP_RATE, "seconds": VRRP_SECONDS,
            "nodes": [f"{NET}.{HOSTS['a']}", f"{NET}.{HOSTS['b']}"]}, "vrrp-flood")
        try:
            r = self.wait_flooder(p, cfg, VRRP_SECONDS)
        finally:
            wall = time.monotonic() - t0
            cpu = {s: (cpu_seconds(pid) - cpu0[s]) / wall for s, pid in pids.items()}
            samples = mon.finish()
            st = stream.finish()
            link.stop()
            waited = {k: round((v - wait0[k]) * 1000) for k, v in runnable_wait(pids).items()}
            frozen = describe(watch.stop())
        worst, excuses = link.worst, link.excuses
        load = loadavg()
        log(f"a: the master's longest silence on the link {link.longest['gap'] * 1000:.0f} ms, "
            f"{link.longest['own'] * 1000:.0f} ms of it its own ({link.longest['why']}); the control threads waited "
            f"for a CPU {waited} ms in all (load {load}); frozen vCPUs: {frozen}; b's takeovers excused: "
            f"{len(excuses)}")
        log(f"a: {r['sent']} VRRP packets in {r['seconds']:.1f}s = {r['rate']:.0f}/s "
            f"({r['errors']} send errors, flooder CPU {r['cpu']:.1f}s); daemon CPU a {cpu['a']:.1%} "
            f"b {cpu['b']:.1%} of a core; stream {st['sent']} bytes, max gap {st['max_gap'] * 1000:.0f} ms")
        self.results["vrrp flood"] = {"packets": r["sent"], "rate": round(r["rate"]),
                                      "cpu": {k: f"{v:.1%}" for k, v in cpu.items()},
                                      "stream_bytes": st["sent"], "stream_max_gap_ms": round(st["max_gap"] * 1000)}
        self.assertGreaterEqual(r["rate"], VRRP_MIN_RATE, "the flooder did not reach the rate")
        self.assertEqual(mon.errors, [])
        self.assertLess(worst["own"], MAX_ADVERT_GAP,
                        f"the master's adverts paused {worst['gap'] * 1000:.0f} ms during the flood ({worst['why']}; "
                        f"load {load}; frozen vCPUs: {frozen})")
        self.assert_no_flap(samples, before, excuses)
        worst_status = max(max(x["a_latency"], x["b_latency"]) for x in samples)
        self.results["vrrp flood"]["slowest_status_ms"] = round(worst_status * 1000)
        self.assertLess(worst_status, 1.0, "/status slow during the VRRP flood")
        for s, pid in self.daemons.items():
            self.assertIsNone(pid.poll(), f"vipproxy on {s} died:\n{self.lab.logtail('vipproxy-' + s)}")
        # Counters: each node saw the group packets and its own unicast ones.
        # The kernel may drop a few (receive buffer), so >= 97 %; a counter
        # never grows by more than was sent (the master's own adverts aside).
        for s in ("a", "b"):
            self.check_counters(r, before, s, wall, "a", excused_takeovers=len(excuses))
        self.check_master_not_amplified("a", wall)
        self.assertIsNone(st["error"], st)
        self.assertTrue(st["intact"], st)
        self.assertLess(st["max_gap"], 1.0, f"the echo stream stalled during the flood ({stream_why(st)}; "
                                            f"frozen vCPUs: {frozen})")
        for s in ("a", "b"):
            self.assertLess(cpu[s], 0.6, f"vipproxy on {s} used {cpu[s]:.0%} of a core for 10k packets/s")

    def check_counters(self, r, before, s, wall, tag, transitions=0, excused_takeovers=0):
        """Each node counted the group packets and its own unicast ones, by
        reason, and what it did not count the kernel dropped at its socket
        (receive buffer full while the daemon was off the CPU; the /proc/net/raw
        drops column): together all that was sent, and the kernel's share
        small. A counter never grows by more than was sent (the master's own
        adverts aside, and a backup's while it rightly took over: up to two
        more transitions and a few adverts per excused takeover)."""
        exp = r["expected"][f"{NET}.{HOSTS[s]}"]
        total_exp = sum(exp.values())

        def seen():
            now = self.vrrp_counters(s)
            return sum(now[k] - before[s][k] for k in now if k not in OWN) + now["kernel_drops"] \
                - before[s]["kernel_drops"]
        # Counts settle once the daemon has read its socket: wait for them.
        try:
            wait_until(lambda: seen() >= 0.995 * total_exp, 5, f"{s} to count what it was sent")
        except AssertionError:
            pass  # the assertions below say what is missing
        after = self.vrrp_counters(s)
        delta = {k: after[k] - before[s][k] for k in after}
        kernel = delta["kernel_drops"]
        log(f"{tag}: {s} expected {exp}")
        log(f"{tag}: {s} counted  {delta}")
        self.results[f"{tag} vrrp counters {s}"] = {"expected": exp, "counted": delta}
        # With the default 208 KiB buffer the kernel dropped 0.3-2.3 % here
        # (the daemon off the CPU ~30 ms on a busy 2-core host); vipproxy asks
        # for 2 MiB (vrrp/netlink.cpp) and none were dropped since.
        self.assertLessEqual(kernel, 0.01 * total_exp, f"{s}: the kernel dropped {kernel} datagrams at the socket")
        # A backup also hears the master's own adverts: 10/s, and one a second
        # more when it re-asserts itself against the lower adverts.
        slack = {"adverts_received": (int(wall * (ADVERTS_PER_S + 1)) + 20 if s == "b" or transitions else 0)
                 + 10 * excused_takeovers}
        for k, n in exp.items():
            if k == "random":
                continue
            self.assertGreaterEqual(delta[k], 0.94 * n, (s, k, n, delta))
            self.assertLessEqual(delta[k], n + exp.get("random", 0) + slack.get(k, 0), (s, k, n, delta))
        drops = sum(v for k, v in delta.items() if k not in OWN + ("other_vrid", "adverts_received"))
        want = sum(v for k, v in exp.items() if k not in ("other_vrid", "adverts_received"))
        self.assertGreaterEqual(drops, 0.94 * want, (s, delta))
        self.assertLessEqual(drops, want, (s, delta))
        counted = sum(v for k, v in delta.items() if k not in OWN)
        self.assertGreaterEqual(counted + kernel, 0.995 * total_exp, (s, "sent but neither counted nor dropped"))
        moved = delta["transitions"] - transitions
        self.assertTrue(moved % 2 == 0 and 0 <= moved <= 2 * excused_takeovers,
                        (s, "transitions", delta["transitions"], "expected", transitions, "excused takeovers",
                         excused_takeovers))
        return delta

    def check_master_not_amplified(self, tag, wall):
        """The master answers a lower-priority advert with an advert and a GARP
        burst (a split brain just ended), but no more than once a second
        (vrrp/fsm.cpp): a flood of lower adverts must not turn it into an
        amplifier of adverts and broadcast ARPs on the link."""
        counted = self.results[f"{tag} vrrp counters a"]["counted"]
        sent, garps = counted["adverts_sent"], counted["garp_sent"]
        log(f"{tag}: the master sent {sent} adverts and {garps} GARPs during the {wall:.1f}s flood")
        self.assertLessEqual(sent, wall * (ADVERTS_PER_S + 1) + 5, "the master's adverts were amplified by the flood")
        # One burst a second (immediate or owed), one more for the start and
        # one for the garp.master_delay repeat.
        self.assertLessEqual(garps, (wall + 3) * GARP_BURST, "the master's GARPs were amplified by the flood")

    # ---- (b) ----
    def test_b_syn_flood(self):
        syncookies = self.lab.sh("a", ["sysctl", "-n", "net.ipv4.tcp_syncookies"]).stdout.strip()
        somaxconn = self.lab.sh("a", ["sysctl", "-n", "net.core.somaxconn"]).stdout.strip()
        log(f"b: in a's namespace net.ipv4.tcp_syncookies={syncookies} (Linux default), "
            f"net.core.somaxconn={somaxconn}")
        self.assertEqual(syncookies, "1", "SYN cookies are not at the Linux default in the namespace")
        self.results["syn flood sysctls"] = {"tcp_syncookies": syncookies, "somaxconn": somaxconn}
        before = {s: self.vrrp_counters(s) for s in ("a", "b")}
        netstat0 = self.tcp_ext("a")
        pid = self.daemons["a"].pid
        stream = Stream(self.lab)
        wait_until(lambda: stream.nrecv > 0, 5, "echo stream through the VIP flowing")
        p, cfg = self.run_flooder("--syn-flood", {"dst": VIP, "port": PORT, "spoof": SPOOF_NET,
                                                  "rate": SYN_RATE, "seconds": SYN_SECONDS}, "syn-flood")
        wait_until(lambda: os.path.exists(cfg["ready"]) or p.poll() is not None, 30, "SYN flooder ready")
        link = LinkWatch(self, "adverts-b", ["a"], {"a": pid})
        mon = Monitor(self)
        mon.start()
        conns = NewConnections(self.lab)
        conns.start()
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        half_open = []

        def count_half_open():
            out = self.lab.sh("a", ["ss", "-Htn", "state", "syn-recv", "sport", "=", f":{PORT}"]).stdout
            half_open.append(len(out.splitlines()))
            return p.poll() is not None
        try:
            wait_until(count_half_open, SYN_SECONDS + 30, "SYN flooder to finish", interval=1.0)
            r = self.wait_flooder(p, cfg, SYN_SECONDS)
        finally:
            wall = time.monotonic() - t0
            cpu = (cpu_seconds(pid) - cpu0) / wall
            conns.stop.set()
            conns.join(15)
            samples = mon.finish()
            st = stream.finish()
            link.stop()
        worst, excuses = link.worst, link.excuses
        netstat = {k: v - netstat0.get(k, 0) for k, v in self.tcp_ext("a").items()}
        cookies = {k: netstat.get(k, 0) for k in ("SyncookiesSent", "SyncookiesRecv", "TCPReqQFullDoCookies",
                                                  "TCPReqQFullDrop", "ListenOverflows", "ListenDrops")}
        worst_status = max(max(s["a_latency"], s["b_latency"]) for s in samples)
        log(f"b: {r['sent']} SYNs in {r['seconds']:.1f}s = {r['rate']:.0f}/s ({r['errors']} send errors, "
            f"flooder CPU {r['cpu']:.1f}s); half-open on a (max) {max(half_open)}; {cookies}; "
            f"daemon CPU a {cpu:.1%}; new sessions {conns.ok} ok, {len(conns.failures)} failed, slowest "
            f"{conns.worst * 1000:.0f} ms; stream {st['sent']} bytes, max gap {st['max_gap'] * 1000:.0f} ms; "
            f"slowest /status {worst_status * 1000:.0f} ms; the master's longest silence on the link "
            f"{link.longest['gap'] * 1000:.0f} ms, {link.longest['own'] * 1000:.0f} ms of it its own "
            f"({link.longest['why']}); b's takeovers excused: {len(excuses)}")
        self.results["syn flood"] = {"syns": r["sent"], "rate": round(r["rate"]), "half_open_max": max(half_open),
                                     "netstat": cookies, "cpu_a": f"{cpu:.1%}", "new_sessions": conns.ok,
                                     "slowest_new_session_ms": round(conns.worst * 1000),
                                     "stream_bytes": st["sent"], "stream_max_gap_ms": round(st["max_gap"] * 1000),
                                     "slowest_status_ms": round(worst_status * 1000)}
        self.assertGreaterEqual(r["rate"], SYN_MIN_RATE, "the SYN flooder did not reach the rate")
        self.assertGreater(max(half_open), 1000, "the flood did not fill a's SYN queue with half-open requests")
        self.assertGreater(cookies["SyncookiesSent"], 0, "the SYN queue never overflowed into cookies")
        self.assertEqual(mon.errors, [])
        self.assertLess(worst_status, 1.0, "/status slow during the SYN flood")
        self.assertLess(worst["own"], MAX_ADVERT_GAP,
                        f"the master's adverts paused {worst['gap'] * 1000:.0f} ms during the SYN flood "
                        f"({worst['why']})")
        self.assert_no_flap(samples, before, excuses)
        self.assertIsNone(self.daemons["a"].poll(), self.lab.logtail("vipproxy-a"))
        self.assertEqual(conns.failures, [], "new sessions failed during the SYN flood")
        self.assertGreater(conns.ok, int(SYN_SECONDS * 5), "too few new sessions during the SYN flood")
        self.assertIsNone(st["error"], st)
        self.assertTrue(st["intact"], st)
        self.assertLess(st["max_gap"], 1.0, "the echo stream stalled during the SYN flood")

    # ---- (c) ----
    def reconfigure(self, short, priority):
        """A planned switchover as an operator makes one: a new priority in
        the file and SIGHUP (applied in place, vrrp/engine.cpp reconfigure)."""
        with open(os.path.join(self.lab.dir, f"vipproxy-{short}.yaml"), "w") as f:
            f.write(self.config(short, priority))
        self.daemons[short].send_signal(signal.SIGHUP)

    def holder_is(self, master):
        backup = "b" if master == "a" else "a"
        return (self.status(master)["vrrp"][0]["state"] == "MASTER"
                and self.status(backup)["vrrp"][0]["state"] == "BACKUP"
                and self.holds_vip(master) and not self.holds_vip(backup))

    def test_c_floods_during_switchover(self):
        """Both floods at once, and two planned switchovers in the middle of
        them (b's priority raised to 150 by a reload: b preempts; lowered
        back to 50: a preempts). Elections complete, sessions to each node's
        own address carry on, the VIP is on the expected node outside the
        switchovers, the floods are counted, /status answers, and the
        adverts on the link (a's and b's together) never pause."""
        before = {s: self.vrrp_counters(s) for s in ("a", "b")}
        pids = {s: p.pid for s, p in self.daemons.items()}
        streams = {s: Stream(self.lab, f"{NET}.{HOSTS[s]}") for s in ("a", "b")}
        for st in streams.values():
            wait_until(lambda: st.nrecv > 0, 5, "echo streams to the node addresses flowing")
        syn, syn_cfg = self.run_flooder("--syn-flood", {"dst": VIP, "port": PORT, "spoof": SPOOF_NET,
                                                        "rate": SYN_RATE, "seconds": VRRP_SECONDS}, "syn-flood-c")
        wait_until(lambda: os.path.exists(syn_cfg["ready"]) or syn.poll() is not None, 30, "SYN flooder ready")
        link = LinkWatch(self, "adverts-both", ["a", "b"], pids)
        mon = Monitor(self)
        mon.start()
        conns = NewConnections(self.lab)
        conns.start()
        cpu0 = {s: cpu_seconds(pid) for s, pid in pids.items()}
        wait0 = runnable_wait(pids)
        watch = VcpuWatch()
        watch.start()
        t0 = time.monotonic()
        vrrp, vrrp_cfg = self.run_flooder("--vrrp-flood", {
            "src": f"{NET}.{HOSTS['attacker']}", "vip": VIP, "rate": VRRP_RATE, "seconds": VRRP_SECONDS,
            "nodes": [f"{NET}.{HOSTS['a']}", f"{NET}.{HOSTS['b']}"]}, "vrrp-flood-c")
        windows = []  # (start, end, who holds the VIP after it)
        try:
            # Back to 90, not 50: the flood carries forged adverts at
            # priority 60 (mid_priority); a master at 50 rightly yields to
            # them (RFC 5798 §6.4.3) and a then waits out its
            # Master_Down_Interval, a gap that would be the attacker's doing.
            for at, short, prio, master in ((3.0, "b", 150, "b"), (7.0, "b", 90, "a")):
                time.sleep(max(0.0, t0 + at - time.monotonic()))  # a schedule, not a wait for a state
                start = time.monotonic()
                self.reconfigure(short, prio)
                wait_until(lambda: self.holder_is(master), 5, f"{master} MASTER with the VIP during the floods")
                windows.append((start, time.monotonic(), master))
            r = self.wait_flooder(vrrp, vrrp_cfg, VRRP_SECONDS)
            rs = self.wait_flooder(syn, syn_cfg, VRRP_SECONDS)
        finally:
            wall = time.monotonic() - t0
            cpu = {s: (cpu_seconds(pid) - cpu0[s]) / wall for s, pid in pids.items()}
            conns.stop.set()
            conns.join(15)
            samples = mon.finish()
            ends = {s: st.finish() for s, st in streams.items()}
            link.stop()
            waited = {k: round((v - wait0[k]) * 1000) for k, v in runnable_wait(pids).items()}
            frozen = describe(watch.stop())
        gap, worst, excuses = link.longest["gap"], link.worst, link.excuses
        load = loadavg()
        took = [round((e - b) * 1000) for b, e, _ in windows]
        worst_status = max(max(x["a_latency"], x["b_latency"]) for x in samples)
        log(f"c: VRRP {r['rate']:.0f}/s and SYN {rs['rate']:.0f}/s for {wall:.1f}s; switchovers took {took} ms; "
            f"CPU a {cpu['a']:.1%} b {cpu['b']:.1%}; adverts on the link {link.count}, longest silence "
            f"{gap * 1000:.0f} ms ({link.longest['own'] * 1000:.0f} ms of it the daemon's: {link.longest['why']}); "
            f"takeovers excused: {len(excuses)}; new sessions via the VIP {conns.ok} ok, {len(conns.failures)} failed; "
            f"slowest /status {worst_status * 1000:.0f} ms; node streams max gap "
            f"{max(e['max_gap'] for e in ends.values()) * 1000:.0f} ms; control threads waited for a CPU {waited} ms "
            f"in all (load {load}); frozen vCPUs: {frozen}")
        self.results["floods during switchover"] = {
            "vrrp_rate": round(r["rate"]), "syn_rate": round(rs["rate"]), "switchover_ms": took,
            "cpu": {k: f"{v:.1%}" for k, v in cpu.items()}, "advert_max_gap_ms": round(gap * 1000),
            "new_sessions": conns.ok, "new_session_failures": conns.failures,
            "slowest_status_ms": round(worst_status * 1000)}
        self.assertGreaterEqual(r["rate"], VRRP_MIN_RATE, "the VRRP flooder did not reach the rate")
        self.assertGreaterEqual(rs["rate"], SYN_MIN_RATE, "the SYN flooder did not reach the rate")
        self.assertEqual(mon.errors, [])
        self.assertLess(worst_status, 1.0, "/status slow during the floods")
        for s in ("a", "b"):
            self.assertIsNone(self.daemons[s].poll(), self.lab.logtail("vipproxy-" + s))
        # Outside the switchovers the VIP is on exactly the expected node.
        for x in samples:
            if any(b <= x["t"] <= e for b, e, _ in windows) or any(b <= x["t"] <= e for b, e in excuses):
                continue
            expect = "b" if windows and windows[0][1] < x["t"] < windows[-1][0] else "a"
            other = "a" if expect == "b" else "b"
            self.assertEqual(x[expect][0], "MASTER", x)
            self.assertEqual(x[other][0], "BACKUP", x)
            self.assertTrue(x[expect + "_vip"] and not x[other + "_vip"], f"VIP not on exactly {expect}: {x}")
        # RFC 5798 §6.4.2: a backup declares the master down after 3 x
        # Master_Adver_Interval + Skew_Time of silence. Adverts from a and b
        # together never pause for more than half an interval beyond one
        # (the handover included: the old master sends until it hears the
        # new one), so no backup anywhere on the link was ever close to it.
        self.assertLess(worst["own"], MAX_ADVERT_GAP,
                        f"an advert gap of {worst['gap'] * 1000:.0f} ms on the link during the floods and "
                        f"switchovers ({worst['why']}; load {load}; frozen vCPUs: {frozen})")
        for s in ("a", "b"):
            self.check_counters(r, before, s, wall, "c", transitions=2, excused_takeovers=len(excuses))
        for s, e in ends.items():
            self.assertIsNone(e["error"], (s, e))
            self.assertTrue(e["intact"], (s, e))
            self.assertLess(e["max_gap"], 1.0, f"the echo stream to {s}'s own address stalled ({stream_why(e)}; "
                                               f"frozen vCPUs: {frozen})")
        # New sessions through the VIP: refused or reset only while it moves
        # (a session that started on the old holder), never outside.
        late = [(round(b - t0, 2), round(e - t0, 2)) for b, e, ok in conns.attempts if not ok
                and not any(wb - 0.1 <= b <= we + 1.0 for wb, we, _ in windows)]
        self.assertEqual(late, [], "new sessions through the VIP failed outside the switchovers")
        self.assertGreater(conns.ok, int(wall * 5), "too few new sessions through the VIP")

    # ---- (a) again, with keepalived 2.2.7 as the backup ----
    def test_d_vrrp_flood_keepalived_backup(self):
        """The same VRRP flood with the real interop peer: keepalived 2.2.7 as
        b (priority 50, VRRPv3, 100 ms) behind vipproxy a. a stays MASTER with
        the VIP, keepalived never leaves BACKUP, a counts every packet. Without
        the zero-interval adverts that keepalived itself falls for
        (KEEPALIVED_FALLS_FOR)."""
        if not os.path.exists(KEEPALIVED):
            raise RuntimeError(f"keepalived not found at {KEEPALIVED} (scripts/deps installs it)")
        # b's vipproxy is BACKUP: stopping it moves nothing.
        self.lab.stop(self.daemons.pop("b"))
        kpid = self.start_keepalived("b", 50)
        wait_until(lambda: "Entering BACKUP STATE" in self.lab.logtail("keepalived-b", 400), 10,
                   "keepalived on b in BACKUP")
        self.assertTrue(self.steady_a())
        before = {"a": self.vrrp_counters("a")}
        klog0 = os.path.getsize(os.path.join(self.lab.dir, "keepalived-b.log"))
        pid_a = self.daemons["a"].pid
        stream = Stream(self.lab)
        wait_until(lambda: stream.nrecv > 0, 5, "echo stream through the VIP flowing")
        link = LinkWatch(self, "adverts-d", ["a"], {"a": pid_a})
        mon = Monitor(self, with_status=("a",))
        mon.start()
        cpu0 = {"a": cpu_seconds(pid_a), "keepalived": cpu_seconds(kpid)}
        wait0 = runnable_wait({"a": pid_a})
        watch = VcpuWatch()
        watch.start()
        t0 = time.monotonic()
        p, cfg = self.run_flooder("--vrrp-flood", {
            "src": f"{NET}.{HOSTS['attacker']}", "vip": VIP, "rate": VRRP_RATE, "seconds": KEEPALIVED_SECONDS,
            "nodes": [f"{NET}.{HOSTS['a']}", f"{NET}.{HOSTS['b']}"], "skip": KEEPALIVED_FALLS_FOR},
            "vrrp-flood-k")
        try:
            r = self.wait_flooder(p, cfg, KEEPALIVED_SECONDS)
        finally:
            wall = time.monotonic() - t0
            cpu = {"a": (cpu_seconds(pid_a) - cpu0["a"]) / wall,
                   "keepalived": (cpu_seconds(kpid) - cpu0["keepalived"]) / wall}
            samples = mon.finish()
            st = stream.finish()
            link.stop()
            waited = {k: round((v - wait0[k]) * 1000) for k, v in runnable_wait({"a": pid_a}).items()}
            frozen = describe(watch.stop())
        worst, excuses = link.worst, link.excuses
        load = loadavg()
        log(f"d: the master's longest silence on the link {link.longest['gap'] * 1000:.0f} ms, "
            f"{link.longest['own'] * 1000:.0f} ms of it its own ({link.longest['why']}); its control thread waited "
            f"for a CPU {waited['a']} ms in all (load {load}); frozen vCPUs: {frozen}; keepalived's takeovers "
            f"excused: {len(excuses)}")
        with open(os.path.join(self.lab.dir, "keepalived-b.log"), errors="replace") as f:
            f.seek(klog0)
            klog = f.read()
        log(f"d: {r['sent']} VRRP packets in {r['seconds']:.1f}s = {r['rate']:.0f}/s; CPU vipproxy a "
            f"{cpu['a']:.1%}, keepalived b (VRRP process) {cpu['keepalived']:.1%} of a core; keepalived wrote "
            f"{len(klog.splitlines())} log lines; stream {st['sent']} bytes, max gap {st['max_gap'] * 1000:.0f} ms, "
            f"{st['client_retransmits']} retransmissions by the client ({stream_why(st)})")
        self.results["vrrp flood, keepalived backup"] = {
            "packets": r["sent"], "rate": round(r["rate"]), "cpu": {k: f"{v:.1%}" for k, v in cpu.items()},
            "keepalived_log_lines": len(klog.splitlines()), "stream_max_gap_ms": round(st["max_gap"] * 1000)}
        self.assertGreaterEqual(r["rate"], VRRP_MIN_RATE, "the flooder did not reach the rate")
        self.assertEqual(mon.errors, [])
        self.assertLess(worst["own"], MAX_ADVERT_GAP,
                        f"the master's adverts paused {worst['gap'] * 1000:.0f} ms during the flood ({worst['why']}; "
                        f"load {load}; frozen vCPUs: {frozen})")
        self.assert_no_flap(samples, before, excuses)
        # keepalived takes over only in a silence the machine caused, as it
        # should (RFC 5798 §6.4.2), at most once in each.
        self.assertLessEqual(klog.count("Entering MASTER STATE"), len(excuses),
                             "keepalived took over during the flood")
        self.assertIsNone(self.daemons["a"].poll(), self.lab.logtail("vipproxy-a"))
        self.assertTrue(os.path.exists(f"/proc/{kpid}"), "keepalived's VRRP process died:\n" + klog[-2000:])
        self.check_counters(r, before, "a", wall, "d", excused_takeovers=len(excuses))
        self.check_master_not_amplified("d", wall)
        self.assertIsNone(st["error"], st)
        self.assertTrue(st["intact"], st)
        self.assertLess(st["max_gap"], 1.0, f"the echo stream stalled during the flood ({stream_why(st)}; "
                                            f"frozen vCPUs: {frozen})")
        self.assertLess(cpu["a"], 0.6)

    def steady_a(self):
        return self.status("a")["vrrp"][0]["state"] == "MASTER" and self.holds_vip("a") and not self.holds_vip("b")

    def start_keepalived(self, short, priority):
        """keepalived 2.2.7 in the foreground; returns its VRRP child's PID
        (recorded so the lab kills exactly that process at the end). Run as
        in production, without -D (detailed logging): with it keepalived
        logs every junk datagram and needs 80-86 % of a core for this flood,
        so on a busy 2-core machine its own socket overflowed, it lost the
        master's adverts with the junk and took the VIP (measured here).
        -G: its log goes to the lab's file only; through syslog() it reached
        the serial console and cost 85 % of a core and frozen vCPUs (see the
        module doc; 7 % of a core without)."""
        d = os.path.join(self.lab.dir, f"keepalived-{short}")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "keepalived.conf")
        with open(conf, "w") as f:
            # Without vrrp_rt_priority: with it (10, and vrrp_rlimit_rttime
            # raised to 500 ms) keepalived's VRRP process exited during this
            # flood the one time it was tried (2026-12-02, before -G: its
            # time then went into console writes, so RLIMIT_RTTIME is the
            # likely cause). Under heavy
            # machine load a normal-priority keepalived can miss our adverts
            # and take over (its manual says as much); the test runs alone.
            f.write(f"global_defs {{\n  router_id {short}\n}}\n"
                    f"vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  version 3\n"
                    f"  virtual_router_id {VRID}\n  priority {priority}\n  advert_int 0.1\n"
                    f"  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n")
        pidf, vrrpf = os.path.join(d, "keepalived.pid"), os.path.join(d, "vrrp.pid")
        self.lab.spawn(f"keepalived-{short}", short,
                       [KEEPALIVED, "-n", "-l", "-G", "-P", "-f", conf, "-p", pidf, "-r", vrrpf])

        def child():
            with open(vrrpf) as f:
                return int(f.read().strip())
        pid = wait_until(child, 10, f"keepalived VRRP child on {short}")
        self.lab.extra_pids.append((pid, "keepalived"))
        return pid

    def tcp_ext(self, short):
        text = self.lab.sh(short, ["cat", "/proc/net/netstat"]).stdout.splitlines()
        out = {}
        for names, values in zip(text[0::2], text[1::2]):
            if names.startswith("TcpExt:"):
                out.update(zip(names.split()[1:], map(int, values.split()[1:])))
        return out


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] in ("--vrrp-flood", "--syn-flood"):
        helper_main()
    else:
        testmain.main()
