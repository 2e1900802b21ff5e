#!/usr/bin/python3
"""What every data path must get right (issue 11), run for the data path in
VIPPROXY_DATA_PATH (auto, kernel, splice, copy; default auto). CTest runs it
once per path; with `kernel` the daemon hands sessions to the kernel after
their first exchange (VIPPROXY_KERNEL_AFTER_EXCHANGES=1), and the test
checks that it did (skipped where the kernel path cannot load).

Each session first makes a few request/response exchanges (so the kernel
path takes it), then: bytes intact both ways under a slow reader, half-close,
RST both ways (also while the other direction waits for a peer that does
not read), client bytes sent before the backend was connected, sessions
cut when their backend stops being primary (and nothing more sent to it
after the cut), maxconn, byte counters (also of sessions ended by a reset), a
reader that pauses longer than tcp_user_timeout (not cut), a session closed
while it holds bytes for a side (a reset, not a FIN), and
kernel memory bounded while a reader stops reading (bytes in transit
between the backend's send and the client's receive, and ss -m of the
sockets involved).
"""
import fcntl
import hashlib
import os
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402

PATH = os.environ.get("VIPPROXY_DATA_PATH", "auto")
EXCHANGES = 10  # more than the daemon's default hand-over point (8)
MIB = 1 << 20
TCP_CLOSE = 7  # tcpi_state of a socket after a reset (include/net/tcp_states.h)


def block(seed, i, size=64 * 1024):
    return hashlib.sha256(f"{seed}:{i}".encode()).digest() * (size // 32)


class Backend(threading.Thread):
    """A line-driven backend: `ping` -> `pong`; `bulk N` sends N pattern
    bytes as fast as the socket takes them (counting them in .sent) and
    closes; `rst` closes with a reset; `echo` echoes everything after it
    and answers the client's FIN with <EOF>; `hold` stops reading and hands
    the socket to the test (.held[tag]); `tag T` names the connection.
    Records how each connection ended (.ends[tag]: 'eof' or 'reset')."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.ends = {}
        self.held = {}
        self.lock = threading.Lock()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        buf = b""
        tag = None

        def end(how):
            with self.lock:
                self.ends[tag] = how
        try:
            while True:
                while b"\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        end("eof")
                        c.close()
                        return
                    buf += d
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"tag "):
                    tag = line[4:].decode()
                elif line == b"ping":
                    c.sendall(b"pong\n")
                elif line.startswith(b"bulk "):
                    n = int(line[5:])
                    i = 0
                    while self.sent < n:
                        b = block("bulk", i)[: n - self.sent]
                        c.sendall(b)
                        self.sent += len(b)
                        i += 1
                    c.close()
                    return
                elif line == b"hold":
                    with self.lock:
                        self.held[tag] = c
                    return
                elif line == b"rst":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    c.close()
                    return
                elif line == b"echo":
                    if buf:
                        c.sendall(buf)
                    while True:
                        d = c.recv(65536)
                        if not d:
                            c.sendall(b"<EOF>")
                            c.close()
                            end("eof")
                            return
                        c.sendall(d)
        except ConnectionResetError:
            end("reset")
        except OSError:
            end("error")


def exchanges(s, n=EXCHANGES):
    for _ in range(n):
        s.sendall(b"ping\n")
        got = b""
        while not got.endswith(b"pong\n"):
            d = s.recv(64)
            if not d:
                raise ConnectionError("closed during the exchanges")
            got += d


def sockets_mem(ports):
    """Sum of skmem r (receive queue) + t (transmit) + w (write queue) over
    TCP sockets on these ports, from ss -tm."""
    out = subprocess.run(["ss", "-tmnH"], capture_output=True, text=True).stdout
    total = 0
    lines = out.splitlines()
    for i, line in enumerate(lines):
        f = line.split()
        if len(f) < 5:
            continue
        if not any(f[3].endswith(f":{p}") or f[4].endswith(f":{p}") for p in ports):
            continue
        mem = lines[i + 1] if i + 1 < len(lines) and "skmem" in lines[i + 1] else line
        m = re.search(r"skmem:\(r(\d+),rb\d+,t(\d+),tb\d+,f\d+,w(\d+)", mem)
        if m:
            total += int(m.group(1)) + int(m.group(2)) + int(m.group(3))
    return total


def queues(local_port, peer_port):
    """(Recv-Q, Send-Q) of the loopback TCP socket local_port -> peer_port
    (ss -tn), or (0, 0) when there is none."""
    out = subprocess.run(["ss", "-tnH"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 5 and f[3].endswith(f":{local_port}") and f[4].endswith(f":{peer_port}"):
            return int(f[1]), int(f[2])
    return 0, 0


def fill(sock, queued, want=None, timeout=20):
    """Sends from `sock` (made non-blocking) until queued() (a queue
    further on) holds `want` bytes or, without `want`, until the proxy has
    stopped reading: `sock` cannot send and queued() (the Recv-Q of the
    proxy's socket facing `sock`) holds bytes and stays the same for 100 ms."""
    sock.setblocking(False)
    chunk = b"z" * 65536
    end = time.monotonic() + timeout
    while True:
        if time.monotonic() > end:
            raise AssertionError(f"the buffers did not fill within {timeout} s (queued {queued()})")
        if want is not None and queued() >= want:
            return
        try:
            sock.send(chunk)
            continue
        except BlockingIOError:
            pass
        if want is None:
            before = queued()
            _, w, _ = select.select([], [sock], [], 0.1)
            if not w and before > 0 and queued() == before:
                return
        else:
            select.select([], [sock], [], 0.05)


def reset_seen(sock, timeout=5):
    """Whether a reset (or any end) reaches `sock` within `timeout`, without
    reading what it holds: poll reports POLLERR/POLLHUP."""
    p = select.poll()
    p.register(sock, select.POLLERR | select.POLLHUP)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in p.poll(100)):
            return True
    return False


def sockstat_tcp_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                return int(line.split("mem")[1].split()[0])
    return 0


class DataPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = L.Lab("vipproxy-datapath")
        cls.rest = L.Standin(cls.lab, "be", "primary")
        cls.backend = Backend()
        cls.backend.start()
        cls.port, cls.admin = L.free_port(), L.free_port()
        cls.small_port = L.free_port()
        y = L.proxy_yaml("dp", cls.port, [("be", cls.backend.port)], [cls.rest.port], cls.admin,
                         extra=f"data_path: {PATH}\nqueue_timeout: 20s\nmaxconn: 1000")
        y += (f"  - name: small\n    listen: 127.0.0.1:{cls.small_port}\n    maxconn: 2\n    data_path: {PATH}\n"
              f"    check: {{type: http, path: /primary, interval: 200ms, rise: 1, fall: 3, timeout: 2s}}\n"
              f"    backends:\n      - name: be2\n        address: 127.0.0.1:{cls.backend.port}\n"
              f"        check_port: {cls.rest.port}\n")
        # A short tcp_user_timeout, for a reader that pauses longer (test_e).
        cls.uto_port = L.free_port()
        y += (f"  - name: uto\n    listen: 127.0.0.1:{cls.uto_port}\n    data_path: {PATH}\n"
              f"    tcp_user_timeout: 2s\n"
              f"    check: {{type: http, path: /primary, interval: 200ms, rise: 1, fall: 3, timeout: 2s}}\n"
              f"    backends:\n      - name: be3\n        address: 127.0.0.1:{cls.backend.port}\n"
              f"        check_port: {cls.rest.port}\n")
        # idle_timeout 1 s, for a session closed while it holds bytes (test_f).
        cls.idle_port = L.free_port()
        y += (f"  - name: idle\n    listen: 127.0.0.1:{cls.idle_port}\n    data_path: {PATH}\n"
              f"    idle_timeout: 1s\n"
              f"    check: {{type: http, path: /primary, interval: 200ms, rise: 1, fall: 3, timeout: 2s}}\n"
              f"    backends:\n      - name: be4\n        address: 127.0.0.1:{cls.backend.port}\n"
              f"        check_port: {cls.rest.port}\n")
        env = {"VIPPROXY_KERNEL_AFTER_EXCHANGES": "1"} if PATH == "kernel" else {}
        cls.vp = L.Vipproxy(cls.lab, y, env=env)
        L.wait_until(lambda: all(p["current_backend"] for p in cls.status()["proxies"]), 20, "backends up")
        kp = cls.status()["kernel_path"]
        if PATH == "kernel" and not kp["available"]:
            cls.lab.close()
            raise unittest.SkipTest(f"the kernel path is not available here: {kp['why_not']}")
        cls.kernel = kp["available"] and PATH == "kernel"  # auto is splice
        L.log(f"data path {PATH}; kernel path {'used' if cls.kernel else 'not used'} ({kp})")

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    @classmethod
    def status(cls):
        return cls.vp.status(cls.admin)

    def counters(self, name="dp"):
        return next(p for p in self.status()["proxies"] if p["name"] == name)["counters"]

    def connect(self, port=None):
        s = socket.create_connection(("127.0.0.1", port or self.port), timeout=20)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def in_kernel_now(self):
        return self.counters()["sessions_kernel"]

    def test_1_exchanges_go_to_the_kernel(self):
        before = self.counters()["kernel_handovers"]
        s = self.connect()
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.counters()["kernel_handovers"] > before, 5, "the hand-over")
            self.assertGreaterEqual(self.in_kernel_now(), 1)
            exchanges(s)  # and it still answers, through the kernel
        else:
            self.assertEqual(self.counters()["kernel_handovers"], before)
        s.close()

    def test_2_slow_reader_both_ways_bytes_intact(self):
        s = self.connect()
        exchanges(s)
        s.sendall(b"echo\n")
        total = 24 * MIB
        tx, rx = hashlib.sha256(), hashlib.sha256()
        got = [0]

        def reader():
            # Slow: small reads with pauses, so every buffer on the way fills.
            while got[0] < total:
                d = s.recv(8192)
                if not d:
                    break
                rx.update(d)
                got[0] += len(d)
                if got[0] % (2 * MIB) < 8192:
                    time.sleep(0.2)

        t = threading.Thread(target=reader)
        t.start()
        i = 0
        sent = 0
        while sent < total:
            b = block("echo", i)
            s.sendall(b)
            tx.update(b)
            sent += len(b)
            i += 1
        t.join(60)
        self.assertEqual(got[0], total)
        self.assertEqual(tx.hexdigest(), rx.hexdigest())
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(s.recv(16), b"<EOF>")
        self.assertEqual(s.recv(16), b"")
        s.close()

    def test_3_half_close(self):
        s = self.connect()
        exchanges(s)
        s.sendall(b"echo\nabc")
        got = b""
        while len(got) < 3:
            got += s.recv(16)
        s.shutdown(socket.SHUT_WR)  # our FIN reaches the backend...
        while d := s.recv(16):  # ...which still answers, and its FIN reaches us
            got += d
        self.assertEqual(got, b"abc<EOF>")
        s.close()

    def test_4_reset_both_ways(self):
        # The client resets: the backend sees a reset, not a clean end.
        s = self.connect()
        s.sendall(f"tag {PATH}-reset\n".encode())
        exchanges(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        L.wait_until(lambda: f"{PATH}-reset" in self.backend.ends, 10, "the backend to see the end")
        self.assertEqual(self.backend.ends[f"{PATH}-reset"], "reset")
        # The backend resets: the client sees a reset.
        s = self.connect()
        exchanges(s)
        s.sendall(b"rst\n")
        with self.assertRaises(ConnectionResetError):
            while s.recv(16):
                pass
        s.close()

    def test_5_client_bytes_before_the_backend_is_connected(self):
        self.rest.set_role("replica")
        L.wait_until(lambda: self.status()["proxies"][0]["current_backend"] is None, 10, "no eligible backend")
        s = self.connect()
        s.sendall(b"echo\nearly bytes")
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        self.rest.set_role("primary")
        got = b""
        while d := s.recv(64):
            got += d
        self.assertEqual(got, b"early bytes<EOF>")
        s.close()
        L.wait_until(lambda: self.status()["proxies"][1]["current_backend"] == "be2", 10, "small back up")

    def test_6_cut_when_the_backend_stops_being_primary(self):
        cut0 = self.counters()["sessions_cut_on_down"]
        s = self.connect()
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.in_kernel_now() >= 1, 5, "the session in the kernel")
        self.rest.set_role("replica")
        t0 = time.monotonic()
        try:
            s.settimeout(10)
            while s.recv(64):
                pass
        except ConnectionResetError:
            pass
        self.assertLess(time.monotonic() - t0, 5, "the session was not cut promptly")
        self.assertGreater(self.counters()["sessions_cut_on_down"], cut0)
        s.close()
        self.rest.set_role("primary")
        L.wait_until(lambda: all(p["current_backend"] for p in self.status()["proxies"]), 10, "backends up")

    def test_7_maxconn(self):
        a, b = self.connect(self.small_port), self.connect(self.small_port)
        exchanges(a)
        exchanges(b)
        c = self.connect(self.small_port)  # waits in the backlog
        c.sendall(b"ping\n")
        c.settimeout(1.0)
        with self.assertRaises(socket.timeout):
            c.recv(16)
        a.close()
        c.settimeout(10)
        self.assertEqual(c.recv(16), b"pong\n")
        exchanges(c)
        b.close()
        c.close()

    def test_8_byte_counters(self):
        L.wait_until(lambda: next(p for p in self.status()["proxies"] if p["name"] == "dp")["sessions_current"] == 0,
                     10, "no session open")
        before = self.counters()
        s = self.connect()
        exchanges(s, 20)
        s.sendall(b"echo\n")
        payload = b"x" * (3 * MIB + 7)
        threading.Thread(target=s.sendall, args=(payload,)).start()
        got = 0
        while got < len(payload):
            got += len(s.recv(65536))
        s.shutdown(socket.SHUT_WR)
        while s.recv(64):
            pass
        s.close()
        L.wait_until(lambda: next(p for p in self.status()["proxies"] if p["name"] == "dp")["sessions_current"] == 0,
                     10, "the session closed")
        after = self.counters()
        self.assertEqual(after["bytes_in"] - before["bytes_in"], 20 * 5 + 5 + len(payload))
        self.assertEqual(after["bytes_out"] - before["bytes_out"], 20 * 5 + len(payload) + 5)

    def test_9_kernel_memory_bounded_while_the_reader_stops(self):
        s = self.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.in_kernel_now() >= 1, 5, "the session in the kernel")
        pages0 = sockstat_tcp_pages()
        self.backend.sent = 0
        total = 64 * MIB
        s.sendall(f"bulk {total}\n".encode())
        # The client reads nothing for 2 s: how much can the backend push?
        time.sleep(2.0)  # the point is a reader that stops for a while
        in_transit = self.backend.sent
        ss_mem = sockets_mem([self.port, self.backend.port])
        pages = sockstat_tcp_pages() - pages0
        L.log(f"{PATH}: reader stopped 2 s: backend sent {in_transit / MIB:.1f} MiB, ss -m of the sockets "
              f"{ss_mem / MIB:.1f} MiB, /proc/net/sockstat TCP mem +{pages * 4096 / MIB:.1f} MiB")
        # The kernel path holds a socket once 2 MiB wait for the reader (its
        # credit, proxy/bpf/forward.bpf.c) and takes the session back: with the
        # sockets' own buffers, 8.7-10.1 MiB in 14 runs, where the same test
        # saw up to 23.6 MiB when only userspace's take-back at 1 MiB bounded it
        # (the worker reacting late to a fast sender). The userspace paths are
        # bounded by the sockets' own limits, as HAProxy is: the backend's send buffer, our receive buffer on the
        # backend socket (autotuned up to tcp_rmem's max: 32 MiB on the CI
        # machine, where one run saw 33 MiB held), our send buffer to the
        # client, the client's 256 KiB, a pipe (up to 1 MiB), and 1 MiB of slack.
        if self.kernel:
            bound = 16 * MIB
        else:
            rmem_max = int(open("/proc/sys/net/ipv4/tcp_rmem").read().split()[2])
            wmem_max = int(open("/proc/sys/net/ipv4/tcp_wmem").read().split()[2])
            bound = rmem_max + 2 * wmem_max + 256 * 1024 + 2 * MIB
        self.assertLess(bound, total, "the bound would not show a stopped reader")
        self.assertLess(in_transit, bound, "the kernel buffered without bound for a stopped reader")
        self.assertLess(ss_mem, bound)
        rx = hashlib.sha256()
        got = 0
        s.settimeout(30)
        while d := s.recv(1 << 20):
            rx.update(d)
            got += len(d)
        self.assertEqual(got, total)
        want = hashlib.sha256()
        i = 0
        n = 0
        while n < total:
            b = block("bulk", i)[: total - n]
            want.update(b)
            n += len(b)
            i += 1
        self.assertEqual(rx.hexdigest(), want.hexdigest())
        s.close()
        if self.kernel:
            self.assertGreaterEqual(self.counters()["kernel_takebacks"], 1)

    def held(self, tag):
        """The backend socket of the session tagged `tag`, once it holds."""
        L.wait_until(lambda: tag in self.backend.held, 5, "the backend to hold")
        return self.backend.held[tag]

    def test_a_cut_sends_nothing_more_to_the_demoted_node(self):
        # The backend stops reading while the client sends: the proxy's send
        # queue to it fills. Cut on demotion, that queue must not go on to the
        # demoted node (a clean close() would send it, then the FIN).
        tag = f"{PATH}-cut-full"
        s = self.connect()
        s.sendall(f"tag {tag}\n".encode())
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.in_kernel_now() >= 1, 5, "the session in the kernel")
        s.sendall(b"hold\n")
        b = self.held(tag)
        proxy_port = b.getpeername()[1]
        fill(s, lambda: queues(proxy_port, self.backend.port)[1], 256 * 1024)
        queued = queues(proxy_port, self.backend.port)[1]
        self.addCleanup(lambda: L.wait_until(lambda: all(p["current_backend"] for p in self.status()["proxies"]), 10,
                                             "backends up"))
        self.addCleanup(self.rest.set_role, "primary")
        self.rest.set_role("replica")
        try:
            s.setblocking(True)
            s.settimeout(10)
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        s.close()
        arrived_at_cut = struct.unpack("i", fcntl.ioctl(b, termios.FIONREAD, b"\0" * 4))[0]
        # The node, still not reading, is reset: what the proxy's socket held
        # for it is dropped. A clean close() would have kept it, and the FIN
        # behind it, until the node read (its socket would stay ESTABLISHED).
        # Not "nothing arrives after the client saw the cut": segments sent
        # before the cut may still sit in loopback's backlog then (a loaded
        # machine ran a sanitizer build's test with 208 KiB of them).
        L.wait_until(lambda: b.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_CLOSE, 10,
                     "the node's socket reset while it was not reading")
        arrived = struct.unpack("i", fcntl.ioctl(b, termios.FIONREAD, b"\0" * 4))[0]
        b.settimeout(10)
        got, how = 0, "eof"
        try:
            while d := b.recv(1 << 20):
                got += len(d)
        except ConnectionResetError:
            how = "reset"
        b.close()
        L.log(f"{PATH}: cut with {queued} bytes queued towards the node; {arrived_at_cut} had arrived when the "
              f"client saw the cut, {arrived} when the reset came; it read {got} and then a {how}")
        self.assertEqual(how, "reset")
        self.assertEqual(got, arrived, "bytes reached the node after its reset")

    def test_b_client_reset_while_the_backend_is_full(self):
        # The client resets while its direction waits for a backend that
        # does not read (nothing comes the other way): the backend sees the
        # reset at once, not when it reads again.
        tag = f"{PATH}-reset-full-c"
        s = self.connect()
        s.sendall(f"tag {tag}\n".encode())
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.in_kernel_now() >= 1, 5, "the session in the kernel")
        s.sendall(b"hold\n")
        b = self.held(tag)
        # Until the proxy stops reading the client: its direction waits for
        # the backend to take what it holds.
        fill(s, lambda: queues(self.port, s.getsockname()[1])[0])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        self.assertTrue(reset_seen(b), "the client's reset did not reach the backend")
        b.close()

    def test_c_backend_reset_while_the_client_is_full(self):
        # The backend resets while its direction waits for a client that
        # does not read (nothing comes the other way): the client sees the
        # reset at once, not when it reads again.
        tag = f"{PATH}-reset-full-b"
        s = self.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(f"tag {tag}\n".encode())
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.in_kernel_now() >= 1, 5, "the session in the kernel")
        s.sendall(b"hold\n")
        b = self.held(tag)
        fill(b, lambda: queues(b.getpeername()[1], self.backend.port)[0])
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        b.close()
        self.assertTrue(reset_seen(s), "the backend's reset did not reach the client")
        s.close()
        L.wait_until(lambda: next(p for p in self.status()["proxies"] if p["name"] == "dp")["sessions_current"] == 0,
                     10, "no session open")

    def test_d_byte_counters_of_reset_sessions(self):
        # Exact counts also for sessions that end with a reset, either way
        # (the kernel path counts from the sockets, whose state after a
        # reset is the one after a FIN).
        def closed():
            return next(p for p in self.status()["proxies"] if p["name"] == "dp")["sessions_current"] == 0
        L.wait_until(closed, 10, "no session open")
        before = self.counters()
        s = self.connect()
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.in_kernel_now() >= 1, 5, "the session in the kernel")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        L.wait_until(closed, 10, "the session closed")
        s = self.connect()
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.in_kernel_now() >= 1, 5, "the session in the kernel")
        s.sendall(b"rst\n")
        with self.assertRaises(ConnectionResetError):
            while s.recv(16):
                pass
        s.close()
        L.wait_until(closed, 10, "the session closed")
        after = self.counters()
        self.assertEqual(after["bytes_in"] - before["bytes_in"], 2 * EXCHANGES * 5 + 4)
        self.assertEqual(after["bytes_out"] - before["bytes_out"], 2 * EXCHANGES * 5)

    def test_e_a_reader_that_pauses_is_not_cut(self):
        # tcp_user_timeout bounds how long sent data may stay unacknowledged
        # (a dead peer). A live reader that stops reading for longer keeps
        # acknowledging the window probes: its session must live on
        # (Linux 5.11+ aborts a socket whose window stays closed for
        # TCP_USER_TIMEOUT, probes answered or not). Proxy uto: 2 s (the
        # session looks every second; the kernel would cut after about 3 s).
        total = 16 * MIB
        # The client pauses while the backend sends.
        s = self.connect(self.uto_port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        exchanges(s)
        self.backend.sent = 0
        s.sendall(f"bulk {total}\n".encode())
        time.sleep(5.0)  # the point is a reader that stops for a while
        got = 0
        s.settimeout(30)
        try:
            while d := s.recv(1 << 20):
                got += len(d)
        except ConnectionResetError:
            pass
        s.close()
        self.assertEqual(got, total, "the session of a paused client was cut")
        # The same with a reply short of the kernel path's take-back (1 MiB
        # waiting for the reader): it stays in the kernel, where no write of
        # ours shows the reader stopped.
        s = self.connect(self.uto_port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.counters("uto")["sessions_kernel"] >= 1, 5, "the session in the kernel")
        self.backend.sent = 0
        s.sendall(b"bulk 900000\n")
        time.sleep(5.0)  # the point is a reader that stops for a while
        got = 0
        try:
            while d := s.recv(1 << 20):
                got += len(d)
        except ConnectionResetError:
            pass
        s.close()
        self.assertEqual(got, 900000, "the session of a paused client was cut")
        if self.kernel:
            self.assertEqual(self.counters("uto")["kernel_takebacks"], 1, "taken back for the 16 MiB only")
        # The backend pauses while the client sends.
        tag = f"{PATH}-uto-backend"
        s = self.connect(self.uto_port)
        s.sendall(f"tag {tag}\n".encode())
        exchanges(s)
        s.sendall(b"hold\n")
        b = self.held(tag)
        payload = b"u" * total
        t = threading.Thread(target=lambda: s.sendall(payload), daemon=True)
        t.start()
        time.sleep(5.0)  # the point is a reader that stops for a while
        got = 0
        b.settimeout(30)
        try:
            while got < total and (d := b.recv(1 << 20)):
                got += len(d)
        except ConnectionResetError:
            pass
        t.join(30)
        b.close()
        s.close()
        self.assertEqual(got, total, "the session of a paused backend was cut")

    def test_f_a_session_closed_with_bytes_it_holds_is_reset(self):
        # A session closed while it still holds bytes for a side (here by
        # idle_timeout, a reader stopped in a bulk reply; the same for a
        # demotion, a drain's end, a -fin timeout) must not end that side
        # with a FIN: after a gap, a clean end of stream would pass the cut
        # stream off as whole. The reader gets what was delivered, then a reset.
        s = self.connect(self.idle_port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        exchanges(s)
        if self.kernel:
            L.wait_until(lambda: self.counters("idle")["sessions_kernel"] >= 1, 5, "the session in the kernel")
        self.backend.sent = 0
        s.sendall(f"bulk {64 * MIB}\n".encode())
        L.wait_until(lambda: self.counters("idle")["idle_timeouts"] >= 1, 10, "the idle timeout")
        got, how = 0, "eof"
        s.settimeout(10)
        try:
            while d := s.recv(1 << 20):
                got += len(d)
        except ConnectionResetError:
            how = "reset"
        s.close()
        L.log(f"{PATH}: idle timeout with the reader stopped: it read {got} of {self.backend.sent} sent, then a {how}")
        self.assertLess(got, 64 * MIB)
        self.assertEqual(how, "reset", "a cut stream ended with a FIN")

    def test_z_daemon_alive(self):
        self.assertTrue(self.vp.alive(), self.vp.log())


if __name__ == "__main__":
    import testmain
    testmain.main()
