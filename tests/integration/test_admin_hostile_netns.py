#!/usr/bin/python3
# Over 500 lines: one namespace lab for every hostile-client case, with the helpers they share.
"""The admin endpoint against a hostile local client (issue 10, item 4): it
shares the control thread with the VRRP timers and health checks, so no
client may slow them down.

Topology (netns.Lab, 10.88.110.0/24 on one bridge, names vpt<pid>-*):

    a       10.88.110.151  vipproxy alone: VRRPv3 VRID 110, advert_int 100 ms, so
                           it is MASTER; a proxy with a TCP check every 200 ms of
                           an echo server; admin on 127.0.0.1:8405 with a token.
                           Started under `prlimit --nofile=4096:4096`.
                           The attacker and the well-behaved clients run here
                           too, on loopback: a *local* client.
    watch   10.88.110.10   captures a's adverts with a raw socket and kernel
                           receive timestamps (SO_TIMESTAMPNS).

  1. Limits while reading: headers over 4 KiB are answered 431 before the
     request ends; a body is refused (400); a request that does not end is
     closed at the 2 s read deadline; without the token 401 with a Basic
     challenge; Bearer and Basic (any user, the token as password) pass.
  2. 2,000 connections at once, half idle, half slow-loris (a header byte
     every second), each reopened 1 s after the daemon closes it, for 12 s.
     Asserted: no gap between a's adverts above 150 ms (from the capture,
     from the last advert before the attack to the first after it) and no
     VRRP transition; /status from a well-behaved client every 250 ms always
     answers, and so does `vipproxy status --token-file`; the check stays UP
     without a transition; the daemon's descriptors never exceed the
     baseline by more than the 32 admin slots and a few, and come back to the
     baseline; the daemon counted the evictions.
  3. The same attack with the daemon's soft RLIMIT_NOFILE lowered to a few
     descriptors above its baseline (prlimit --pid), so accept() fails with
     EMFILE: accepting pauses 100 ms per failure (accept_errors stays around
     10/s, and the daemon's CPU time well under half a core, instead of a
     core spent retrying: 5.9 s of CPU in 6.3 s before the fix), the failure
     is logged, no advert gap above 150 ms; once the limit is back, /status
     answers and the descriptors return to the baseline.

The attacker raises its own RLIMIT_NOFILE (it needs > 2,000 sockets) and
runs at nice 10; the daemon's control thread runs SCHED_RR (vrrp_rt_priority,
see DAEMON_RT_PRIORITY) and the daemon with a fixed RLIMIT_NOFILE: the
numbers are the daemon's, not the harness's nor the rest of the machine's.
An advert gap is held to MAX_GAP less the time in it when no CPU ran
anything of ours (one SCHED_FIFO canary per CPU, thread_trace.MachineStalls):
the clean-clone CI machine has stalled whole for ~600 ms. Before the fix (main at 4ce159a) case 2 failed: the
daemon held all 2,000 connections (2,019 descriptors) for their 10 s, and
case 3 spun a core on EMFILE.
"""
import errno
import json
import os
import re
import resource
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
VIPPROXY = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE_DIR, "build", "vipproxy"))
PY = "/usr/bin/python3"

OCTET = 110
NET = f"10.88.{OCTET}"
HOSTS = {"a": 151, "watch": 10}
A_ADDR = f"{NET}.151"
VIP = f"{NET}.160"
VRID = 110
GROUP = "224.0.0.18"
ADMIN_PORT = 8405
ECHO_PORT = 7000
TOKEN = "hostile-test-7c1f0e52a9d84b36"
DAEMON_NOFILE = 4096
# The daemon's control thread (adverts, checks and the admin endpoint) runs
# SCHED_RR through the product's own vrrp_rt_priority, so that the rest of a
# busy machine cannot delay its timers (measured on the shared 2-core machine
# at load 11 with no attack at all: advert gaps up to 185 ms at normal
# priority). Only the daemon's own work, the admin endpoint's included, can
# then delay an advert: that is what is measured. It used to be `chrt --rr`
# around the whole daemon. VIPPROXY_ADMIN_TEST_RT=0 runs it at normal
# priority.
DAEMON_RT_PRIORITY = int(os.environ.get("VIPPROXY_ADMIN_TEST_RT", "10"))
CONNECTIONS = 2000
ATTACK_SECONDS = 12.0
EMFILE_SECONDS = 6.0
MAX_GAP = 0.150           # the bound on advert gaps at advert_int 100 ms
ADMIN_SLOTS = 32          # AdminLimits::max_connections (daemon/admin.h)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


# ---------------------------------------------------------------------------
# Helpers run as their own processes with `ip netns exec`.
# ---------------------------------------------------------------------------
def capture_main(cfg):
    """Appends the kernel receive time (CLOCK_REALTIME) of every VRRPv3
    advert from cfg["source"] for cfg["vrid"] to cfg["out"], one per line."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    mreq = socket.inet_aton(GROUP) + socket.inet_aton(cfg["local"])
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    src = socket.inet_aton(cfg["source"])
    with open(cfg["out"], "a", buffering=1) as out:
        print("ready", file=out)
        while True:
            data, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(16))
            ihl = (data[0] & 0x0f) * 4
            if data[12:16] != src or len(data) < ihl + 8:
                continue
            v = data[ihl:]
            if v[0] != 0x31 or v[1] != cfg["vrid"]:
                continue
            ts = None
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", blob[:16])
                    ts = sec + nsec / 1e9
            print(f"{ts if ts is not None else time.time():.6f}", file=out)


def capture_tx_main(cfg):
    """The sender's side: the kernel's timestamp of every VRRPv3 advert for
    cfg["vrid"] leaving cfg["dev"] (an AF_PACKET tap sees outgoing frames as
    the daemon hands them to the device, before any forwarding), one per line
    in cfg["out"]. Tells a late daemon from a slow path to the peer."""
    # ETH_P_ALL: only such taps see outgoing frames (dev_queue_xmit_nit).
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((cfg["dev"], 0x0003))  # Python puts the protocol in network order itself
    with open(cfg["out"], "a", buffering=1) as out:
        print("ready", file=out)
        while True:
            data, anc, _, addr = s.recvmsg(2048, socket.CMSG_SPACE(16))
            if addr[2] != socket.PACKET_OUTGOING or len(data) < 14 + 20 + 8 or data[12:14] != b"\x08\x00":
                continue
            ip = data[14:]
            ihl = (ip[0] & 0x0f) * 4
            if ip[9] != 112 or len(ip) < ihl + 2 or ip[ihl] != 0x31 or ip[ihl + 1] != cfg["vrid"]:
                continue
            ts = None
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", blob[:16])
                    ts = sec + nsec / 1e9
            print(f"{ts if ts is not None else time.time():.6f}", file=out)


def attack_main(cfg):
    """cfg: port, connections, seconds, reconnect_delay, out. Half the
    connections stay idle, half send a request one header byte per second
    (slow-loris); a connection the daemon closes is reopened after
    reconnect_delay. Writes a JSON summary to cfg["out"]."""
    need = cfg["connections"] + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard), max(need, hard)))
    os.nice(10)
    sel = selectors.DefaultSelector()
    addr = ("127.0.0.1", cfg["port"])
    stats = {"connect_attempts": 0, "established": 0, "connect_errors": 0, "closed_by_server": 0,
             "peak_open": 0, "first_burst_established": 0, "loris_lines": 0, "loris_bytes": 0, "lifetimes": []}
    conns = {}     # fd -> [socket, kind, connected_at or None, next_byte_at, of the first burst]
    pending = []   # (reopen_at, kind)

    def open_one(kind, first=False):
        s = socket.socket()
        s.setblocking(False)
        # A reset on close: no TIME_WAIT pile-up across reconnects.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stats["connect_attempts"] += 1
        err = s.connect_ex(addr)
        if err not in (0, 115):  # EINPROGRESS
            stats["connect_errors"] += 1
            s.close()
            pending.append((time.monotonic() + cfg["reconnect_delay"], kind))
            return
        conns[s.fileno()] = [s, kind, None, 0.0, first]
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)

    def drop(fd, by_server):
        s, kind, connected_at = conns.pop(fd)[:3]
        sel.unregister(s)
        s.close()
        if by_server:
            stats["closed_by_server"] += 1
            if connected_at is not None:
                stats["lifetimes"].append(time.monotonic() - connected_at)
        pending.append((time.monotonic() + cfg["reconnect_delay"], kind))

    start = time.monotonic()
    end = start + cfg["seconds"]
    for i in range(cfg["connections"]):
        open_one("idle" if i % 2 == 0 else "loris", first=True)
    while time.monotonic() < end:
        now = time.monotonic()
        for key, ev in sel.select(timeout=0.05):
            fd = key.fd
            c = conns.get(fd)
            if c is None:
                continue
            s = c[0]
            if c[2] is None:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err and err not in (errno.ECONNRESET, errno.EPIPE):
                    stats["connect_errors"] += 1
                    drop(fd, False)
                    continue
                # A reset means the daemon accepted it (the handshake was
                # complete) and closed it before we looked.
                c[2] = now
                stats["established"] += 1
                stats["first_burst_established"] += 1 if c[4] else 0
                if err:
                    drop(fd, True)
                    continue
                sel.modify(s, selectors.EVENT_READ)
                if c[1] == "loris":
                    try:
                        s.send(b"GET /status HTTP/1.1\r\n")
                        stats["loris_lines"] += 1
                    except OSError:
                        pass
                    c[3] = now + 1.0
                continue
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                drop(fd, True)
        open_now = sum(1 for c in conns.values() if c[2] is not None)
        stats["peak_open"] = max(stats["peak_open"], open_now)
        for fd, c in list(conns.items()):
            if c[1] == "loris" and c[2] is not None and now >= c[3]:
                try:
                    c[0].send(b"X")
                    stats["loris_bytes"] += 1
                except OSError:
                    pass
                c[3] = now + 1.0
        due = [p for p in pending if p[0] <= now]
        pending[:] = [p for p in pending if p[0] > now]
        for _, kind in due:
            open_one(kind)
    for fd in list(conns):
        s = conns.pop(fd)[0]
        s.close()
    lt = sorted(stats.pop("lifetimes"))
    stats["lifetime_p50"] = lt[len(lt) // 2] if lt else None
    stats["lifetime_max"] = lt[-1] if lt else None
    stats["seconds"] = time.monotonic() - start
    with open(cfg["out"], "w") as f:
        json.dump(stats, f)


def poll_main(cfg):
    """A well-behaved client, in a process of its own: GET /status with the
    token every `period` (3 s timeout each) until the file `stop` exists;
    writes ok, failures and latencies to `out`. Its own process, one thread,
    the request built before connecting and sent right after: as a client
    such as curl or `vipproxy status` does. (As a thread of the test process
    it could wait several ms for the GIL between connect() and send(), and a
    flood that turns the slots over every ~9 ms then rightly took it for an
    idle connection: seen twice in CI.)"""
    req = (f"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {cfg['token']}\r\n"
           "Connection: close\r\n\r\n").encode()
    ok, failed, latencies = 0, [], []
    while not os.path.exists(cfg["stop"]):
        t = time.monotonic()
        connected = sent = None  # when connect() and sendall() returned: a failure says where it was
        try:
            with socket.create_connection(("127.0.0.1", cfg["port"]), timeout=3) as s:
                connected = time.monotonic() - t
                s.sendall(req)
                sent = time.monotonic() - t
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise ValueError(f"answer {head[:40]!r}")
            json.loads(body)
            ok += 1
            latencies.append(time.monotonic() - t)
        except (OSError, ValueError) as e:
            at = "".join(f", {what} after {v * 1000:.2f} ms" for what, v in (("connected", connected),
                                                                              ("sent", sent)) if v is not None)
            failed.append(f"{time.monotonic() - t:.3f}s{at}: {e}")
        time.sleep(max(0.0, cfg["period"] - (time.monotonic() - t)))
    with open(cfg["out"], "w") as f:
        json.dump({"ok": ok, "failed": failed, "latencies": latencies}, f)


def helper_main():
    mode, cfg = sys.argv[1], json.loads(sys.argv[2])
    {"--capture": capture_main, "--capture-tx": capture_tx_main, "--attack": attack_main, "--poll": poll_main}[mode](cfg)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] in ("--capture", "--capture-tx", "--attack",
                                                                      "--poll"):
    helper_main()
    sys.exit(0)

import netns  # noqa: E402  (the helpers above need none of this)
from netns import in_netns, log, wait_until  # noqa: E402
import testmain  # noqa: E402
from thread_trace import MachineStalls  # noqa: E402


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gaps_over(stamps, t0, t1, limit):
    """(offset from t0, gap) of every gap above limit covering [t0, t1]."""
    before = [t for t in stamps if t < t0]
    seq = before[-1:] + [t for t in stamps if t0 <= t <= t1] + [t for t in stamps if t > t1][:1]
    return [(round(a - t0, 3), round(b - a, 3)) for a, b in zip(seq, seq[1:]) if b - a > limit]


def max_gap(stamps, t0, t1, stalls):
    """Largest gap between consecutive adverts covering [t0, t1] (from the
    last advert before t0 to the first after t1), the number inside, the gap
    less the time in it when every CPU was stalled (`stalls`, a stopped
    thread_trace.MachineStalls), and what the canaries saw: (gap, n, own, why)."""
    before = [t for t in stamps if t < t0]
    inside = [t for t in stamps if t0 <= t <= t1]
    after = [t for t in stamps if t > t1]
    seq = before[-1:] + inside + after[:1]
    if len(seq) < 2:
        return None, len(inside), None, ""
    a, b = max(zip(seq, seq[1:]), key=lambda p: p[1] - p[0])
    return b - a, len(inside), b - a - stalls.everywhere(a, b), stalls.describe(a, b)


class Poller:
    """The well-behaved client (poll_main) as a process in a's namespace."""

    def __init__(self, lab, period=0.25):
        self.lab = lab
        self.out = os.path.join(lab.dir, "poller.json")
        self.stop_file = self.out + ".stop"
        self.cfg = {"port": ADMIN_PORT, "token": TOKEN, "period": period, "out": self.out, "stop": self.stop_file}
        self.ok, self.failed, self.latencies = 0, [], []

    def start(self):
        self.proc = self.lab.spawn("poller", "a", [PY, os.path.abspath(__file__), "--poll", json.dumps(self.cfg)])

    def finish(self):
        with open(self.stop_file, "w"):
            pass
        self.proc.wait(10)
        with open(self.out) as f:
            r = json.load(f)
        self.ok, self.failed, self.latencies = r["ok"], r["failed"], r["latencies"]


class FdSampler(threading.Thread):
    """The daemon's descriptor count (peak), and for a failure message where
    its threads' time went: the largest growth of a thread's run delay (time
    runnable but waiting for a CPU, /proc/PID/task/TID/schedstat) between two
    samples, and how often a thread was seen in D state (blocked in the
    kernel, e.g. a log write throttled by writeback)."""

    def __init__(self, pid, period=0.05):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.stop = threading.Event()
        self.peak = 0
        self.max_run_delay_ms = 0.0
        self.d_state = 0

    def run(self):
        last = {}
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, fd_count(self.pid))
                for tid in os.listdir(f"/proc/{self.pid}/task"):
                    with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                        delay = int(f.read().split()[1])
                    if tid in last:
                        self.max_run_delay_ms = max(self.max_run_delay_ms, (delay - last[tid]) / 1e6)
                    last[tid] = delay
                    with open(f"/proc/{self.pid}/task/{tid}/stat") as f:
                        self.d_state += f.read().rsplit(")", 1)[1].split()[0] == "D"
            except (OSError, ValueError, IndexError):
                pass
            self.stop.wait(self.period)

    def explain(self):
        return (f"the daemon's threads waited up to {self.max_run_delay_ms:.0f} ms for a CPU within one "
                f"{self.period * 1000:.0f} ms sample and were seen blocked (D) {self.d_state} times")


class AdminHostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(VIPPROXY):
            raise RuntimeError(f"vipproxy binary not found at {VIPPROXY} (set VIPPROXY_BIN)")
        cls.t_start = time.monotonic()
        cls.lab = netns.Lab(third_octet=OCTET)
        cls.results = {}
        for short, host in HOSTS.items():
            cls.lab.add_node(short, host)
        # Reconnecting clients go through many ephemeral ports.
        cls.lab.sh("a", ["sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000"])
        cls.token_file = os.path.join(cls.lab.dir, "token")
        with open(os.open(cls.token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(TOKEN + "\n")
        cls.capture_file = os.path.join(cls.lab.dir, "adverts.txt")
        cls.lab.spawn("capture", "watch", [PY, os.path.abspath(__file__), "--capture", json.dumps(
            {"source": A_ADDR, "vrid": VRID, "local": f"{NET}.{HOSTS['watch']}", "out": cls.capture_file})])
        cls.tx_file = os.path.join(cls.lab.dir, "adverts-tx.txt")
        cls.lab.spawn("capture-tx", "a", [PY, os.path.abspath(__file__), "--capture-tx", json.dumps(
            {"dev": "eth0", "vrid": VRID, "out": cls.tx_file})])
        wait_until(lambda: os.path.exists(cls.capture_file) and os.path.exists(cls.tx_file), 10,
                   "the advert captures to start")
        cls.lab.echo_backend("a", ECHO_PORT)
        path = cls.config_path = os.path.join(cls.lab.dir, "vipproxy-a.yaml")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("\n".join([
                "node: a", "log_level: info", "threads: 1"] + (
                    [f"vrrp_rt_priority: {DAEMON_RT_PRIORITY}"] if DAEMON_RT_PRIORITY else []) + [
                "admin:", f"  listen: 127.0.0.1:{ADMIN_PORT}", f"  token: {TOKEN}",
                "proxies:", "  - name: pg", "    listen: 0.0.0.0:5433", "    check:", "      type: tcp",
                "      interval: 200ms", "      timeout: 500ms", "      rise: 1", "      fall: 2",
                "    backends:", "      - name: local", f"        address: 127.0.0.1:{ECHO_PORT}",
                "vrrp:", "  - name: VI_1", "    interface: eth0", f"    virtual_router_id: {VRID}",
                "    priority: 150", "    version: 3", "    advert_int: 100ms",
                "    virtual_ipaddresses:", f"      - {VIP}/24"]) + "\n")
        # A known descriptor limit for the daemon, whatever the harness has.
        cls.daemon = cls.lab.spawn("vipproxy-a", "a", ["prlimit", f"--nofile={DAEMON_NOFILE}:{DAEMON_NOFILE}",
                                                       "--", VIPPROXY, "--config", path])
        cls.pid = cls.daemon.pid
        wait_until(lambda: cls.vrrp()["state"] == "MASTER", 15, "a to become VRRP master")
        wait_until(lambda: cls.backend()["check"]["state"] == "UP", 10, "the echo backend to be UP")
        cls.check_scheduling()
        log(f"lab: namespaces {cls.lab.namespaces}, daemon PID {cls.pid}, logs in {cls.lab.dir}")

    @classmethod
    def tearDownClass(cls):
        for k, v in cls.results.items():
            log(f"measured {k}: {v}")
        log(f"run time {time.monotonic() - cls.t_start:.1f}s")
        cls.lab.close()

    # ---- helpers ----
    @classmethod
    def status(cls, timeout=3, headers=None):
        with in_netns(cls.lab.ns("a")):
            req = urllib.request.Request(f"http://127.0.0.1:{ADMIN_PORT}/status",
                                         headers=headers or {"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r)

    @classmethod
    def vrrp(cls):
        return cls.status()["vrrp"][0]

    @classmethod
    def check_scheduling(cls):
        """The control thread is (still) SCHED_RR: vrrp_rt_priority took, and
        its 500 ms guard (daemon/realtime.h) never fired under the attack."""
        if DAEMON_RT_PRIORITY:
            got = cls.status()["control_thread"]["scheduling"]
            if got != f"SCHED_RR {DAEMON_RT_PRIORITY}":
                raise AssertionError(f"control thread scheduling: {got}")

    def tearDown(self):
        self.check_scheduling()

    @classmethod
    def backend(cls):
        return cls.status()["proxies"][0]["backends"][0]

    def raw(self, payload, read_timeout=10.0, keep_open=True):
        """Sends payload on a fresh connection (without closing our side) and
        reads until the daemon closes: (reply bytes, seconds until closed)."""
        with in_netns(self.lab.ns("a")):
            s = socket.create_connection(("127.0.0.1", ADMIN_PORT), timeout=read_timeout)
        with s:
            t = time.monotonic()
            if payload:
                s.sendall(payload)
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            return data, time.monotonic() - t

    def adverts(self, path=None):
        """Kernel receive times of a's adverts at the peer (or, with
        path=self.tx_file, as they left a)."""
        with open(path or self.capture_file) as f:
            return [float(x) for x in f.read().split() if x != "ready"]

    def run_attack(self, seconds, name):
        out = os.path.join(self.lab.dir, f"attack-{name}.json")
        cfg = {"port": ADMIN_PORT, "connections": CONNECTIONS, "seconds": seconds, "reconnect_delay": 1.0,
               "out": out}
        p = self.lab.spawn(f"attack-{name}", "a", [PY, os.path.abspath(__file__), "--attack", json.dumps(cfg)])
        return p, out

    def finish_attack(self, p, out, seconds):
        p.wait(seconds + 60)
        self.assertEqual(p.returncode, 0, f"the attacker failed:\n{self.lab.logtail(os.path.basename(out)[:-5])}")
        with open(out) as f:
            return json.load(f)

    def settle_fds(self):
        """The daemon's descriptor count once it stops changing."""
        last = [None]

        def stable():
            n = fd_count(self.pid)
            same = n == last[0]
            last[0] = n
            return same
        wait_until(stable, 10, "the daemon's descriptor count to settle", interval=0.5)
        return last[0]

    # ---- 0 ----
    def test_0_cli_token_sources(self):
        """`vipproxy status` / `doctor` find the token without it being in
        their arguments; the old --token still works, with a warning."""
        env = {k: v for k, v in os.environ.items() if k != "VIPPROXY_TOKEN"}

        def cli(*args, extra_env=None):
            e = dict(env, **(extra_env or {}))
            return netns.run(["ip", "netns", "exec", self.lab.ns("a"), VIPPROXY, *args], check=False, timeout=30,
                             env=e)
        # A config naming the endpoint but holding no token (never the
        # machine's /etc/vipproxy/vipproxy.yaml).
        cli_cfg = os.path.join(self.lab.dir, "cli.yaml")
        with open(cli_cfg, "w") as f:
            f.write(f"node: a\nadmin:\n  listen: 127.0.0.1:{ADMIN_PORT}\nproxies:\n  - name: pg\n"
                    f"    listen: 0.0.0.0:5433\n    backends:\n      - name: local\n"
                    f"        address: 127.0.0.1:{ECHO_PORT}\n")
        plain = ["--config", cli_cfg]
        r = cli("status", "--json", *plain)
        self.assertEqual(r.returncode, 1)
        self.assertIn("wants a token", r.stderr)
        r = cli("status", "--json", *plain, "--token-file", self.token_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["node"], "a")
        self.assertEqual(r.stderr, "")
        r = cli("status", "--json", *plain, extra_env={"VIPPROXY_TOKEN": TOKEN})
        self.assertEqual(r.returncode, 0, r.stderr)
        r = cli("status", "--json", *plain, "--token", TOKEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning: --token shows the token to every user", r.stderr)
        wrong = os.path.join(self.lab.dir, "wrong-token")
        with open(os.open(wrong, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("not-the-token\n")
        r = cli("status", *plain, "--token-file", wrong)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"refused the token from --token-file {wrong}", r.stderr)
        r = cli("status", *plain, "--token-file", os.path.join(self.lab.dir, "absent"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read it", r.stderr)
        # doctor: the admin endpoint verdict with the token from a file.
        r = cli("doctor", "--config", self.config_path, "--no-adverts", "--etcd", "127.0.0.1:1",
                "--token-file", self.token_file)
        self.assertRegex(r.stdout, rf"(?m)^OK   admin endpoint: http://127\.0\.0\.1:{ADMIN_PORT}/status answers "
                                   r"\(vipproxy .*, node a\); token from --token-file ")
        r = cli("doctor", "--config", self.config_path, "--no-adverts", "--etcd", "127.0.0.1:1",
                "--token-file", wrong)
        self.assertRegex(r.stdout, r"(?m)^WARN admin endpoint: .* refused the token from --token-file ")

    # ---- 1 ----
    def test_1_limits_while_reading(self):
        # Over 4 KiB of headers, request not finished: answered 431 while we
        # still hold the connection open, i.e. while the daemon was reading.
        data, took = self.raw(b"GET /status HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"a" * 6000)
        self.assertTrue(data.startswith(b"HTTP/1.1 431"), data[:200])
        self.assertLess(took, 1.5, "the oversized request was not refused while reading")
        # A body is never read.
        data, _ = self.raw(b"POST /status HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:200])
        # Not HTTP.
        data, _ = self.raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64 + b"\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:200])
        # A request that never ends: closed at the read deadline (2 s).
        data, took = self.raw(b"GET /status HTTP/1.1\r\nHost: a\r\n")
        self.assertEqual(data, b"")
        self.assertGreaterEqual(took, 1.5, "closed before the read deadline")
        self.assertLess(took, 8.0, "the read deadline did not close the connection")
        log(f"an unfinished request was closed after {took:.2f}s")
        # A connection that has sent nothing stays with the kernel
        # (TCP_DEFER_ACCEPT): it takes no slot and cannot be taken for an
        # idle one while its client waits for a CPU; once its request is in,
        # it is accepted and answered. (Linux hands an idle one over after
        # ~1 s; 300 ms is well inside.)
        accepted = self.status()["admin"]["accepted"]  # counts this request
        with in_netns(self.lab.ns("a")):
            quiet = socket.create_connection(("127.0.0.1", ADMIN_PORT), timeout=5)
        try:
            time.sleep(0.3)  # nothing is to happen: a window, not a wait for an event
            self.assertEqual(self.status()["admin"]["accepted"], accepted + 1,
                             "a connection that sent nothing was accepted at once")
            quiet.sendall(f"GET /status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {TOKEN}\r\n"
                          "Connection: close\r\n\r\n".encode())
            answer = b""
            while chunk := quiet.recv(65536):
                answer += chunk
            self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:200])
        finally:
            quiet.close()
        # The token: none -> 401 with a Basic challenge (what a browser needs).
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.status(headers={"Authorization": "Bearer wrong"})
        self.assertEqual(cm.exception.code, 401)
        self.assertIn("Basic", cm.exception.headers.get("WWW-Authenticate", ""))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.status(headers={"X-None": "1"})
        self.assertEqual(cm.exception.code, 401)
        import base64
        basic = base64.b64encode(f"operator:{TOKEN}".encode()).decode()
        self.assertEqual(self.status(headers={"Authorization": f"Basic {basic}"})["node"], "a")
        admin = self.status()["admin"]
        self.results["admin counters after 1"] = admin
        for k in ("too_large", "bad_requests", "timeouts", "unauthorized"):
            self.assertGreaterEqual(admin[k], 1, k)
        self.assertEqual(admin["max_connections"], ADMIN_SLOTS)

    # ---- 2 ----
    def test_2_idle_and_slowloris_flood(self):
        # A quiet window first: if the machine alone delays adverts, the
        # failure message says so.
        with self.machine_stalls() as stalls:
            self.idle_and_slowloris_flood(stalls)

    def machine_stalls(self):
        return MachineStalls.in_lab(self.lab, 120)

    def idle_and_slowloris_flood(self, stalls):
        q0 = time.time()
        time.sleep(3)
        q1 = time.time()
        base_fds = self.settle_fds()
        before = self.status()
        v0, b0 = before["vrrp"][0], before["proxies"][0]["backends"][0]
        cpu0 = cpu_seconds(self.pid)
        poller, fds = Poller(self.lab), FdSampler(self.pid)
        t0 = time.time()
        p, out = self.run_attack(ATTACK_SECONDS, "flood")
        poller.start()
        fds.start()
        cli = []
        for _ in range(3):
            time.sleep(ATTACK_SECONDS / 4)
            r = self.lab.sh("a", [VIPPROXY, "status", "--json", "--admin", f"127.0.0.1:{ADMIN_PORT}",
                                  "--token-file", self.token_file], check=False, timeout=30)
            cli.append((r.returncode, r.stderr.strip()[:200], len(r.stdout)))
        atk = self.finish_attack(p, out, ATTACK_SECONDS)
        t1 = time.time()
        poller.finish()
        fds.stop.set()
        fds.join(10)
        cpu = cpu_seconds(self.pid) - cpu0
        after = self.status()
        v1, b1 = after["vrrp"][0], after["proxies"][0]["backends"][0]
        stalls.stop()
        quiet_gap = max_gap(self.adverts(), q0, q1, stalls)[0]
        gap, n, own, stalled = max_gap(self.adverts(), t0, t1, stalls)
        tx_gap, tx_n, tx_own, tx_stalled = max_gap(self.adverts(self.tx_file), t0, t1, stalls)
        lat = sorted(poller.latencies)
        self.results["flood"] = {
            "attacker": atk, "max_advert_gap_ms": None if gap is None else round(gap * 1000, 1),
            "quiet_max_gap_ms": None if quiet_gap is None else round(quiet_gap * 1000, 1),
            "sent_max_gap_ms": None if tx_gap is None else round(tx_gap * 1000, 1), "sent": tx_n,
            "adverts": n, "gaps_over_110ms": gaps_over(self.adverts(), t0, t1, 0.110),
            "polls_ok": poller.ok, "polls_failed": len(poller.failed),
            "poll_p50_ms": round(lat[len(lat) // 2] * 1000, 1) if lat else None,
            "poll_max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "fds_base": base_fds, "fds_peak": fds.peak, "daemon_cpu_s": round(cpu, 2),
            "max_run_delay_ms": round(fds.max_run_delay_ms, 1), "d_state_samples": fds.d_state,
            "admin": after.get("admin"), "load": os.getloadavg()}
        log(f"flood: {self.results['flood']}")
        # The attack was what it says.
        self.assertGreaterEqual(atk["first_burst_established"], CONNECTIONS, "the attacker did not open 2,000")
        # Slow-loris clients sent their first line (then a byte a second for
        # as long as they live: with TCP_DEFER_ACCEPT a loris is accepted at
        # its first line and, its bytes read, waits like an idle one, so the
        # flood usually closes it before its second byte).
        self.assertGreater(atk["loris_lines"], 0)
        evicted = after.get("admin", {}).get("evicted", 0) - before.get("admin", {}).get("evicted", 0)
        self.assertGreaterEqual(evicted, CONNECTIONS - ADMIN_SLOTS, "the daemon did not close the idle connections")
        # The control thread kept its timing: VRRP and the check.
        self.assertIsNotNone(gap, "no adverts captured")
        self.assertIsNotNone(tx_gap, "no adverts captured leaving a")
        why = (f"(as they left a: {tx_gap * 1000:.0f} ms, {tx_stalled}; at the peer in the 3 s before the attack: "
               f"{(quiet_gap or 0) * 1000:.0f} ms; {fds.explain()}; load {os.getloadavg()})")
        self.assertLessEqual(tx_own, MAX_GAP, f"a sent no advert for {tx_gap * 1000:.0f} ms during the attack {why}")
        self.assertLessEqual(own, MAX_GAP, f"the peer heard no advert for {gap * 1000:.0f} ms during the attack "
                                           f"({stalled}) {why}")
        self.assertGreaterEqual(n, int((t1 - t0) / 0.1 * 0.9), "fewer adverts than advert_int allows")
        self.assertEqual(v1["state"], "MASTER")
        self.assertEqual(v1["transitions"], v0["transitions"])
        self.assertEqual(b1["check"]["state"], "UP")
        self.assertEqual(b1["check"]["transitions"], b0["check"]["transitions"])
        # A well-behaved client was answered every time.
        self.assertGreater(poller.ok, int(ATTACK_SECONDS / 0.25 * 0.5))
        self.assertEqual(poller.failed, [], "a well-behaved /status request failed during the attack")
        for rc, err, size in cli:
            self.assertEqual(rc, 0, f"vipproxy status --token-file failed during the attack: {err}")
            self.assertGreater(size, 0)
        # Descriptors: bounded by the slots during, back to the baseline after.
        self.assertLessEqual(fds.peak, base_fds + ADMIN_SLOTS + 4)
        wait_until(lambda: fd_count(self.pid) <= base_fds, 10, f"the daemon's descriptors back to {base_fds}",
                   interval=0.2)
        wait_until(lambda: self.status()["admin"]["connections"] <= 1, 10, "the admin slots to empty")

    # ---- 3 ----
    def test_3_emfile_backs_off(self):
        base_fds = self.settle_fds()
        before = self.status()
        v0 = before["vrrp"][0]
        soft = base_fds + 6
        cpu0 = cpu_seconds(self.pid)
        sampler = FdSampler(self.pid)
        sampler.start()
        stalls = self.machine_stalls()
        netns.run(["prlimit", "--pid", str(self.pid), f"--nofile={soft}:{DAEMON_NOFILE}"])
        try:
            t0 = time.time()
            p, out = self.run_attack(EMFILE_SECONDS, "emfile")
            atk = self.finish_attack(p, out, EMFILE_SECONDS)
            t1 = time.time()
        finally:
            netns.run(["prlimit", "--pid", str(self.pid), f"--nofile={DAEMON_NOFILE}:{DAEMON_NOFILE}"])
            stalls.stop()
        cpu = cpu_seconds(self.pid) - cpu0
        sampler.stop.set()
        sampler.join(10)
        wait_until(lambda: self.status(), 10, "/status to answer once the limit is back")
        after = self.status()
        errors = after.get("admin", {}).get("accept_errors", 0) - before.get("admin", {}).get("accept_errors", 0)
        gap, n, own, stalled = max_gap(self.adverts(), t0, t1, stalls)
        tx_gap, _, tx_own, tx_stalled = max_gap(self.adverts(self.tx_file), t0, t1, stalls)
        self.results["emfile"] = {"soft_limit": soft, "accept_errors": errors, "daemon_cpu_s": round(cpu, 2),
                                  "max_run_delay_ms": round(sampler.max_run_delay_ms, 1),
                                  "attacker": atk,
                                  "gaps_over_110ms": gaps_over(self.adverts(), t0, t1, 0.110),
                                  "max_advert_gap_ms": None if gap is None else round(gap * 1000, 1),
                                  "sent_max_gap_ms": None if tx_gap is None else round(tx_gap * 1000, 1),
                                  "adverts": n, "load": os.getloadavg()}
        log(f"emfile: {self.results['emfile']}")
        self.assertGreater(errors, 0, "accept() never failed: the limit did not bite")
        # 100 ms pause per failure: ~10 a second; a spinning loop makes 10^5.
        self.assertLessEqual(errors, (t1 - t0) / 0.1 + 20, "accept errors at a rate that means no back-off")
        # The symptom of a loop without back-off: a core spent retrying.
        self.assertLess(cpu, 0.5 * (t1 - t0), f"the daemon used {cpu:.1f} s of CPU in {t1 - t0:.1f} s at EMFILE")
        self.assertRegex(self.lab.logtail("vipproxy-a", 400),
                         r"admin: accept failed: Too many open files; pausing accepts for 100 ms")
        self.assertIsNotNone(gap, "no adverts captured")
        self.assertIsNotNone(tx_gap, "no adverts captured leaving a")
        why = f"(as they left a: {tx_gap * 1000:.0f} ms, {tx_stalled}; {sampler.explain()}; load {os.getloadavg()})"
        self.assertLessEqual(tx_own, MAX_GAP, f"a sent no advert for {tx_gap * 1000:.0f} ms at EMFILE {why}")
        self.assertLessEqual(own, MAX_GAP, f"the peer heard no advert for {gap * 1000:.0f} ms at EMFILE "
                                           f"({stalled}) {why}")
        self.assertEqual(after["vrrp"][0]["state"], "MASTER")
        self.assertEqual(after["vrrp"][0]["transitions"], v0["transitions"])
        wait_until(lambda: fd_count(self.pid) <= base_fds, 10, f"the daemon's descriptors back to {base_fds}",
                   interval=0.2)


if __name__ == "__main__":
    testmain.main()
