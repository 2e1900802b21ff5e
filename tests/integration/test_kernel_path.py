#!/usr/bin/python3
"""What is particular to the kernel data path (data_path: kernel; README,
"Kernel data path"), beyond what test_data_path checks on every path.

- Reports lost: the program tells the worker through a ring buffer (64 KiB,
  4096 reports) each time a socket passed another 256 KiB, and when it held
  a socket at its credit. A worker that does not run for a while (SIGSTOP
  here; a loaded machine, a long stall) lets the ring fill while hundreds of
  sessions stream: the reports after that are dropped by the kernel. A
  session whose "held" report was among them must still be taken back and
  deliver every byte, in order.
- Map entries: 2,000 sessions in the kernel at once, then ended by FIN or
  reset (and the take-backs above): every map empty after (bpftool).
- A hand-over whose second socket the kernel refuses (SecondSocketRefused),
  maps full (MapsFull), no CAP_BPF (WithoutCapBpf): the session goes on
  in userspace, whole, and the daemon says why.

Skipped where the kernel path cannot load (no CAP_BPF, an old kernel),
except WithoutCapBpf, which needs root.
"""
import hashlib
import json
import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402

MIB = 1 << 20

# A backend in its own process (the test's sender must not share a GIL with
# it): answers the first line, then reads everything up to the client's FIN
# and answers with the count and SHA-256 of what it read.
SINK = r"""
import hashlib, selectors, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(4096)
srv.setblocking(False)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
sel = selectors.DefaultSelector()
sel.register(srv, selectors.EVENT_READ, None)
state = {}
while True:
    for key, _ in sel.select():
        if key.data is None:
            try:
                c, _ = srv.accept()
            except BlockingIOError:
                continue
            c.setblocking(False)
            state[c] = [b"", None, 0]
            sel.register(c, selectors.EVENT_READ, c)
            continue
        c = key.data
        st = state[c]
        try:
            d = c.recv(1 << 20)
        except BlockingIOError:
            continue
        except OSError:
            d = b""
        if st[1] is None:
            st[0] += d
            if b"\n" in st[0]:
                line, rest = st[0].split(b"\n", 1)
                c.setblocking(True)
                c.sendall(b"pong\n")
                c.setblocking(False)
                st[1] = hashlib.sha256(rest)
                st[2] = len(rest)
            elif d:
                continue
        elif d:
            st[1].update(d)
            st[2] += len(d)
        if not d:
            sel.unregister(c)
            try:
                c.setblocking(True)
                if st[1] is not None:
                    c.sendall(f"{st[2]} {st[1].hexdigest()}\n".encode())
            except OSError:
                pass
            c.close()
            del state[c]
"""


def map_entries(pid):
    """Entries in each of the daemon's kernel-path maps, by name, read with
    bpftool through the map ids in /proc/PID/fdinfo (None: no bpftool)."""
    if not shutil.which("bpftool"):
        return None
    counts = {}
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = f.read()
        except OSError:
            continue
        m = re.search(r"^map_id:\s*(\d+)", info, re.M)
        if not m:
            continue
        show = json.loads(subprocess.run(["bpftool", "-j", "map", "show", "id", m.group(1)], check=True,
                                         capture_output=True, text=True).stdout)
        if show.get("name") not in ("targets", "active", "links", "held", "credit"):
            continue
        dump = subprocess.run(["bpftool", "-j", "map", "dump", "id", m.group(1)], check=True,
                              capture_output=True, text=True).stdout
        counts[show["name"]] = counts.get(show["name"], 0) + len(json.loads(dump))
    return counts


def pattern(i, size):
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def digest_line(payload):
    """What the sink answers once it has `payload` whole: its length and SHA-256."""
    return f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n".encode()


def ping(port):
    """A session through the proxy on `port` past its first exchange (the
    hand-over comes after it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"ping\n")
    got = b""
    while not got.endswith(b"pong\n"):
        got += s.recv(16)
    return s


def send_all_and_read_digest(s, payload):
    """Sends `payload`, half-closes, returns the sink's answer; closes `s`."""
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while d := s.recv(4096):
        reply += d
    s.close()
    return reply


def sink_lab(name):
    """A lab with the primary's REST stand-in "be" and the sink backend:
    (lab, stand-in, the sink's port)."""
    lab = L.Lab(name)
    try:
        rest = L.Standin(lab, "be", "primary")
        port_file = os.path.join(lab.dir, "sink.port")
        lab.spawn("sink", [L.PY, "-c", SINK, port_file])
        L.wait_until(lambda: os.path.exists(port_file), 10, "the sink backend")
        with open(port_file) as f:
            return lab, rest, int(f.read())
    except BaseException:
        lab.close()
        raise


def start_one_worker_kernel_proxy(case, lab_name, env):
    """setUp of the cases on one kernel-path proxy with one worker in front
    of the sink, `env` its test settings: skips when the kernel path is not
    available here."""
    case.lab, case.rest, sink_port = sink_lab(lab_name)
    case.addCleanup(case.lab.close)
    case.port, case.admin = L.free_port(), L.free_port()
    y = L.proxy_yaml("kp", case.port, [("be", sink_port)], [case.rest.port], case.admin,
                     extra="data_path: kernel", threads=1)
    case.vp = L.Vipproxy(case.lab, y, env=dict({"VIPPROXY_KERNEL_AFTER_EXCHANGES": "1"}, **env))
    L.wait_until(lambda: L.status(case.admin)["proxies"][0]["current_backend"], 20, "backend up")
    kp = L.status(case.admin)["kernel_path"]
    if not kp["available"]:
        case.skipTest(f"the kernel path is not available here: {kp['why_not']}")


def setUpModule():
    # test_2 holds 2,000 sessions: 2,000 sockets here, 2,000 in the sink and
    # 4,000 in the daemon (a QEMU guest's 1024/4096 failed it with EMFILE).
    L.lift_nofile()


class KernelPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab, cls.rest, cls.sink_port = sink_lab("vipproxy-kernelpath")
        cls.port, cls.admin = L.free_port(), L.free_port()
        # One worker: one ring buffer, which every session's reports share.
        y = L.proxy_yaml("kp", cls.port, [("be", cls.sink_port)], [cls.rest.port], cls.admin,
                         extra="data_path: kernel\nmaxconn: 5000", threads=1)
        cls.vp = L.Vipproxy(cls.lab, y, env={"VIPPROXY_KERNEL_AFTER_EXCHANGES": "1"})
        L.wait_until(lambda: cls.status()["proxies"][0]["current_backend"], 20, "backend up")
        kp = cls.status()["kernel_path"]
        if not kp["available"]:
            cls.lab.close()
            raise unittest.SkipTest(f"the kernel path is not available here: {kp['why_not']}")

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    @classmethod
    def status(cls):
        return cls.vp.status(cls.admin)

    def counters(self):
        return self.status()["proxies"][0]["counters"]

    def sessions_current(self):
        return self.status()["proxies"][0]["sessions_current"]

    def open_sessions(self, n):
        """n sessions, each past its first exchange and in the kernel."""
        before = self.counters()["sessions_kernel"]
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            s.sendall(b"ping\n")
            socks.append(s)
        for s in socks:
            got = b""
            while not got.endswith(b"pong\n"):
                d = s.recv(16)
                if not d:
                    raise ConnectionError("closed during the exchange")
                got += d
            s.setblocking(False)
        L.wait_until(lambda: self.counters()["sessions_kernel"] >= before + n, 30,
                     f"{n} sessions in the kernel")
        return socks

    def pump(self, socks, payloads, sent, until_stalled):
        """Sends each socket's payload; returns once all is sent or (with
        until_stalled) once no socket took a byte for 0.5 s."""
        sel = selectors.DefaultSelector()
        for i, s in enumerate(socks):
            if sent[i] < len(payloads[i]):
                sel.register(s, selectors.EVENT_WRITE, i)
        last = time.monotonic()
        deadline = time.monotonic() + 60
        while sel.get_map():
            if time.monotonic() > deadline:
                left = sum(len(p) - n for p, n in zip(payloads, sent))
                raise AssertionError(f"{len(sel.get_map())} sessions still sending after 60 s ({left} bytes left)")
            ready = sel.select(0.1)
            if until_stalled and not ready and time.monotonic() - last > 0.5:
                break
            for key, _ in ready:
                i = key.data
                try:
                    n = socks[i].send(memoryview(payloads[i])[sent[i]:sent[i] + 256 * 1024])
                except BlockingIOError:
                    continue
                sent[i] += n
                last = time.monotonic()
                if sent[i] == len(payloads[i]):
                    sel.unregister(socks[i])
        sel.close()

    def replies(self, socks, timeout):
        """What each socket receives up to its end, within `timeout` for all."""
        got = [b""] * len(socks)
        sel = selectors.DefaultSelector()
        for i, s in enumerate(socks):
            sel.register(s, selectors.EVENT_READ, i)
        deadline = time.monotonic() + timeout
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(0.2):
                i = key.data
                try:
                    d = socks[i].recv(4096)
                except BlockingIOError:
                    continue
                except OSError as e:
                    d = b""
                    got[i] += f"<{e}>".encode()
                got[i] += d
                if not d:
                    sel.unregister(socks[i])
        sel.close()
        return got

    def test_1_reports_lost_while_the_worker_stalls(self):
        # 600 sessions each push 2.5 MiB while the daemon is stopped: each
        # client socket makes about ten reports (its first bytes, one per
        # 256 KiB up to its 2 MiB credit, then the hold), 6000 in all for a
        # ring of 4096.
        n, size = 600, 5 * MIB // 2
        socks = self.open_sessions(n)
        payloads = [pattern(i, size) for i in range(n)]
        sent = [0] * n
        takebacks0 = self.counters()["kernel_takebacks"]
        os.kill(self.vp.proc.pid, signal.SIGSTOP)
        try:
            # One session after the other: the first ones fill the ring, the
            # reports of the last ones are all dropped.
            for i in range(n):
                one = [sent[i]]
                self.pump([socks[i]], [payloads[i]], one, until_stalled=True)
                sent[i] = one[0]
        finally:
            os.kill(self.vp.proc.pid, signal.SIGCONT)
        L.log(f"sent {sum(sent) / MIB:.0f} MiB while the daemon was stopped "
              f"({sum(1 for x in sent if x < size)} sessions blocked)")
        self.pump(socks, payloads, sent, until_stalled=False)
        for s in socks:
            s.shutdown(socket.SHUT_WR)
        replies = self.replies(socks, 60)
        bad = []
        for i, s in enumerate(socks):
            want = f"{size} {hashlib.sha256(payloads[i]).hexdigest()}\n".encode()
            if replies[i] != want:
                bad.append((i, replies[i][:80]))
            s.close()
        c = self.counters()
        L.log(f"take-backs {c['kernel_takebacks'] - takebacks0}, lost sessions {c['kernel_lost_sessions']}")
        self.assertEqual(bad, [], f"{len(bad)} of {n} sessions did not deliver their bytes intact")
        # The case happened: the ring had no room for some reports.
        self.assertIn("the kernel path's ring buffer was full", self.vp.log(400))
        L.wait_until(lambda: self.sessions_current() == 0, 20, "every session closed")
        self.assert_maps_empty()

    def assert_maps_empty(self):
        counts = map_entries(self.vp.proc.pid)
        if counts is None:
            L.log("no bpftool: map entries not counted")
            return
        self.assertEqual(counts, {m: 0 for m in ("targets", "active", "links", "held", "credit")})

    def test_2_many_sessions_leave_nothing_in_the_maps(self):
        # 2,000 sessions in the kernel at once (4,000 sockets in each
        # SOCKHASH, of 32,768), each still answering; then half end with
        # the client's FIN, half with its reset: no entry is left behind.
        n = 2000
        socks = self.open_sessions(n)
        counts = map_entries(self.vp.proc.pid)
        with open(f"/proc/{self.vp.proc.pid}/status") as f:
            rss = re.search(r"VmRSS:\s*(\d+)", f.read()).group(1)
        L.log(f"{n} sessions in the kernel: map entries {counts}, daemon VmRSS {rss} kB")
        if counts is not None:
            for m in ("targets", "active", "links", "credit"):
                self.assertEqual(counts[m], 2 * n, m)
        payloads = [pattern(i, 4096) for i in range(n)]
        self.pump(socks, payloads, [0] * n, until_stalled=False)
        for i, s in enumerate(socks):
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            else:
                s.shutdown(socket.SHUT_WR)
        kept = socks[::2]
        replies = self.replies(kept, 30)
        for i, s in enumerate(kept):
            want = f"4096 {hashlib.sha256(payloads[2 * i]).hexdigest()}\n".encode()
            self.assertEqual(replies[i], want, f"session {2 * i}")
            s.close()
        L.wait_until(lambda: self.sessions_current() == 0, 20, "every session closed")
        self.assert_maps_empty()

    def test_z_daemon_alive(self):
        self.assertTrue(self.vp.alive(), self.vp.log())


class SecondSocketRefused(unittest.TestCase):
    """A hand-over puts the client's socket into the program's map, then
    the backend's. A FIN or a reset on the backend's socket in between (a
    backend that closes as the client sends) makes the kernel refuse the
    second: by then the client's socket may have had bytes redirected. The
    daemon used to take it out again and carry on with splice: those bytes
    went uncounted, and those still queued towards the backend were dropped
    with its psock. VIPPROXY_TEST_REFUSE_SECOND=1 makes every hand-over wait
    50 ms after the first socket went in and then find the second refused;
    the client sends in that time."""

    def setUp(self):
        start_one_worker_kernel_proxy(self, "vipproxy-refused", {"VIPPROXY_TEST_REFUSE_SECOND": "1"})

    def test_bytes_forwarded_before_the_refusal_are_counted_and_kept(self):
        payload = pattern(7, 4 * MIB)
        s = ping(self.port)
        # The hand-over starts as the pong goes out: these bytes arrive
        # while the client's socket is in the map and the backend's is not.
        reply = send_all_and_read_digest(s, payload)
        self.assertEqual(reply, digest_line(payload), "the backend did not get the payload whole")
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["sessions_current"] == 0, 10, "the session closed")
        c = L.status(self.admin)["proxies"][0]["counters"]
        self.assertEqual(c["bytes_in"], 5 + len(payload), "client bytes uncounted")
        self.assertEqual(c["bytes_out"], 5 + len(reply))
        self.assertEqual(c["kernel_lost_sessions"], 0)
        # Handed over, then taken back at once.
        self.assertEqual((c["kernel_handovers"], c["kernel_takebacks"], c["kernel_refusals"]), (1, 1, 0))


class MapsFull(unittest.TestCase):
    """Sessions past the room of the program's maps stay on splice
    (kernel_refusals) and work; a session that ends frees its room for the
    next. VIPPROXY_TEST_KERNEL_MAX_SESSIONS=2 sizes the maps for two
    sessions (tests only)."""

    def setUp(self):
        start_one_worker_kernel_proxy(self, "vipproxy-mapsfull", {"VIPPROXY_TEST_KERNEL_MAX_SESSIONS": "2"})

    def counters(self):
        return L.status(self.admin)["proxies"][0]["counters"]

    def session(self):
        return ping(self.port)

    def finish(self, s, i):
        payload = pattern(i, 1 * MIB)
        self.assertEqual(send_all_and_read_digest(s, payload), digest_line(payload), f"session {i}")

    def test_past_the_maps_room_sessions_stay_on_splice(self):
        socks = [self.session() for _ in range(4)]
        L.wait_until(lambda: self.counters()["kernel_refusals"] == 2, 10, "two hand-overs refused")
        c = self.counters()
        self.assertEqual((c["sessions_kernel"], c["sessions_splice"]), (2, 2))
        # Said once (not for every refusal), as capacity.
        self.assertEqual(self.vp.log(100).count("the kernel path's maps are full"), 1, self.vp.log(100))
        for i, s in enumerate(socks):
            self.finish(s, i)
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["sessions_current"] == 0, 10, "sessions closed")
        # The room is free again.
        s = self.session()
        L.wait_until(lambda: self.counters()["kernel_handovers"] == 3, 10, "a third hand-over")
        self.finish(s, 9)
        self.assertEqual(self.counters()["kernel_refusals"], 2)


class WithoutCapBpf(unittest.TestCase):
    """A daemon that may not load the program (no CAP_BPF, CAP_PERFMON or
    CAP_SYS_ADMIN; kernel.unprivileged_bpf_disabled or not): data_path
    kernel means splice, said once with the reason, and its sessions work."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (setpriv --bounding-set)")
        self.lab, self.rest, sink_port = sink_lab("vipproxy-nobpf")
        self.addCleanup(self.lab.close)
        self.port, self.admin = L.free_port(), L.free_port()
        y = L.proxy_yaml("kp", self.port, [("be", sink_port)], [self.rest.port], self.admin,
                         extra="data_path: kernel")
        config = os.path.join(self.lab.dir, "vipproxy.yaml")
        with open(config, "w") as f:
            f.write(y)
        # Root without the capabilities that allow bpf(): the bounding set
        # limits what an exec'd root process gets.
        self.proc = self.lab.spawn("vipproxy", ["setpriv", "--bounding-set", "-bpf,-perfmon,-sys_admin", "--",
                                                L.VIPPROXY, "--config", config],
                                   env=dict(os.environ, VIPPROXY_KERNEL_AFTER_EXCHANGES="1"))
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"], 20, "backend up")

    def test_kernel_means_splice_and_says_why_once(self):
        st = L.status(self.admin)
        self.assertFalse(st["kernel_path"]["available"])
        why = st["kernel_path"]["why_not"]
        self.assertIn("needs CAP_BPF", why)
        log = self.lab.logtail("vipproxy", 200)
        self.assertEqual(log.count("kernel forwarding not available"), 1, log)
        self.assertIn(why, log)
        # Sessions go on with splice, whole.
        s = ping(self.port)
        payload = pattern(1, 3 * MIB)
        self.assertEqual(send_all_and_read_digest(s, payload), digest_line(payload))
        c = L.status(self.admin)["proxies"][0]["counters"]
        self.assertEqual(c["kernel_handovers"], 0)
        self.assertEqual(c["kernel_refusals"], 0)
        # Nothing kept for a kernel path that is not there.
        self.assertIn("privileges: keeping no capabilities", self.lab.logtail("vipproxy", 200))


if __name__ == "__main__":
    testmain.main()
