#!/usr/bin/python3
"""Half-closed sessions have a bounded life (client_fin_timeout,
server_fin_timeout: HAProxy's `timeout client-fin` / `server-fin`), so with
idle_timeout 0 (the default) a peer that sent its FIN and then went quiet
cannot hold a maxconn slot forever; a half-closed session that still moves
data is left alone (the bound is on inactivity, as in HAProxy).

The real daemon on loopback, maxconn 2, and a backend in this process that
never closes its side (or closes only its side at once), so the session stays
half-closed until vipproxy ends it.
"""
import ctypes
import errno
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


class Backend:
    """A TCP backend on 127.0.0.1. mode "hold": read until the client's FIN,
    then keep the socket open and say nothing (a server that ignores FIN).
    mode "fin": send FIN at once (shutdown SHUT_WR) and keep reading.
    mode "trickle": after the client's FIN, send one byte every `period` for
    `count` bytes, then close."""

    def __init__(self, mode, period=0.1, count=0):
        self.mode, self.period, self.count = mode, period, count
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.accepted = 0
        self.accept_times = []  # time.monotonic() of each accept
        self.client_fins = 0
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.accept_times.append(time.monotonic())
                self.held.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            if self.mode == "fin":
                c.shutdown(socket.SHUT_WR)
            while c.recv(4096):
                pass
            with self.lock:
                self.client_fins += 1
            if self.mode == "trickle":
                for _ in range(self.count):
                    time.sleep(self.period)
                    c.sendall(b".")
                c.close()
        except OSError:
            pass

    def close(self):
        self.sock.close()
        with self.lock:
            for c in self.held:
                c.close()


def peer_socket_options(pid, peer_port):
    """The options of the daemon's socket connected to 127.0.0.1:peer_port,
    read from a duplicate of its descriptor (pidfd_getfd(2), Linux 5.6; the
    duplicate is closed, the daemon's socket is untouched); None if there is
    no such socket (yet)."""
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = LIBC.syscall(SYS_pidfd_getfd, pidfd, int(name), 0)
            if fd < 0:
                err = ctypes.get_errno()
                if err == errno.EBADF:  # closed meanwhile
                    continue
                raise OSError(err, "pidfd_getfd: " + os.strerror(err))
            s = socket.socket(fileno=fd)
            try:
                if s.family != socket.AF_INET or s.type != socket.SOCK_STREAM:
                    continue
                try:
                    if s.getpeername() != ("127.0.0.1", peer_port):
                        continue
                except OSError:  # a listener
                    continue
                return {"keepalive": s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        "idle": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                        "interval": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                        "count": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                        "user_timeout": s.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)}
            finally:
                s.close()
        return None
    finally:
        os.close(pidfd)


LIBC = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_getfd = 438  # x86_64 and every architecture with the generic table


def closed_by_peer(s, timeout):
    """Reads until EOF or reset within `timeout`; returns the bytes read."""
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return got
            got += chunk
    except ConnectionResetError:
        return got


class HalfClosedSessions(unittest.TestCase):
    def start(self, backend, client_fin, server_fin):
        self.backend = backend
        self.rest = L.Standin(self.lab, "rest", "primary")
        self.port, self.admin = L.free_port(), L.free_port()
        # One worker: maxconn is checked when a worker arms its accept, so
        # with several workers a connection can slip past it (an accept armed
        # below the limit by one worker while another fills it); that is not
        # what this test is about.
        y = L.proxy_yaml("p", self.port, [("b", backend.port)], [self.rest.port], self.admin, threads=1,
                         extra=f"maxconn: 2\nclient_fin_timeout: {client_fin}\nserver_fin_timeout: {server_fin}\n"
                         "keepalive: {idle: 7s, interval: 3s, count: 4}\ntcp_user_timeout: 23s\n")
        self.vp = L.Vipproxy(self.lab, y)
        L.wait_until(lambda: self.vp.status(self.admin)["proxies"][0]["current_backend"] == "b", 20, "backend up")

    def setUp(self):
        self.lab = L.Lab("vipproxy-halfclose")
        self.backend = None
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.lab.close()
        if self.backend:
            self.backend.close()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.clients.append(s)
        return s

    def counters(self):
        return self.vp.status(self.admin)["proxies"][0]["counters"]

    def sessions(self):
        return self.vp.status(self.admin)["proxies"][0]["sessions_current"]

    def fill_then_third_gets_served(self, fin_bound):
        """Two half-closed sessions fill maxconn 2; a third client is served
        once they reach their bound, and each was closed no earlier."""
        b = self.backend
        t_fin = time.monotonic()
        firsts = [self.connect(), self.connect()]
        for s in firsts:
            s.sendall(b"x")
            if b.mode == "hold":
                s.shutdown(socket.SHUT_WR)
        L.wait_until(lambda: b.accepted == 2, 10, "both sessions at the backend")
        if b.mode == "hold":
            L.wait_until(lambda: b.client_fins == 2, 10, "the clients' FINs at the backend")
        self.assertEqual(self.sessions(), 2)
        third = self.connect()  # completes in the kernel's backlog: vipproxy is at maxconn
        third.sendall(b"y")
        # A slot comes back after the bound (generous deadline: a loaded
        # machine may be slow; the bound itself is checked below).
        L.wait_until(lambda: b.accepted == 3, fin_bound + 15, "the third client to reach the backend")
        for s in firsts:
            closed_by_peer(s, 10)
        # Not before the bound: the half-closes came after t_fin, and a timer
        # never fires early, so the third session cannot have reached the
        # backend sooner.
        waited = b.accept_times[2] - t_fin
        L.log(f"third client served {waited:.2f}s after the first two half-closed (bound {fin_bound}s)")
        self.assertGreaterEqual(waited, fin_bound)
        L.wait_until(lambda: self.counters()["fin_timeouts"] == 2, 10, "fin_timeouts == 2")
        self.assertEqual(self.counters()["idle_timeouts"], 0)
        self.assertIn("vipproxy_proxy_fin_timeouts", self.vp.metrics(self.admin))
        return third

    def test_1_client_fin_and_a_backend_that_never_closes(self):
        # The client sent its FIN; the backend ignores it and stays silent.
        # server_fin_timeout is the short one: it is what ends them.
        self.start(Backend("hold"), client_fin="1h", server_fin="1500ms")
        self.fill_then_third_gets_served(1.5)

    def test_2_backend_fin_and_a_client_that_never_closes(self):
        # The backend closed its side; the client keeps its socket open and
        # silent forever. client_fin_timeout ends it.
        self.start(Backend("fin"), client_fin="1500ms", server_fin="1h")
        third = self.fill_then_third_gets_served(1.5)
        self.assertEqual(closed_by_peer(third, 5), b"", "the third client did not get the backend's FIN")

    def test_3_a_half_closed_session_that_moves_data_stays(self):
        # The bound is on inactivity: a backend answering after the client's
        # FIN, a byte every 100 ms for 3x the bound, is not cut.
        self.start(Backend("trickle", period=0.1, count=60), client_fin="2s", server_fin="2s")
        s = self.connect()
        s.sendall(b"q")
        s.shutdown(socket.SHUT_WR)
        got = closed_by_peer(s, 30)
        self.assertEqual(got, b"." * 60)
        self.assertEqual(self.counters()["fin_timeouts"], 0)
        L.wait_until(lambda: self.sessions() == 0, 10, "the session to end")

    def test_4_none_means_no_bound(self):
        # 0/none: the operator's explicit choice to keep half-closed sessions.
        self.start(Backend("hold"), client_fin="none", server_fin="0s")
        s = self.connect()
        s.sendall(b"x")
        s.shutdown(socket.SHUT_WR)
        L.wait_until(lambda: self.backend.client_fins == 1, 10, "the client's FIN at the backend")
        s.settimeout(2)
        with self.assertRaises(socket.timeout):
            s.recv(1)  # nothing closes it
        self.assertEqual(self.sessions(), 1)

    def test_5_a_half_closed_session_gets_its_dead_peer_options(self):
        # Keepalive and TCP_USER_TIMEOUT go on the backend socket once a
        # session has lived a second (a churned connection does without their
        # five system calls), also when it half-closed before that: the
        # fin timeout and the options share one timer.
        self.start(Backend("hold"), client_fin="1h", server_fin="1h")
        t_connect = time.monotonic()
        s = self.connect()
        s.sendall(b"x")
        s.shutdown(socket.SHUT_WR)
        L.wait_until(lambda: self.backend.client_fins == 1, 10, "the client's FIN at the backend")
        try:
            first = peer_socket_options(self.vp.proc.pid, self.backend.port)
        except PermissionError as e:
            self.skipTest(f"cannot read the daemon's sockets here: {e}")
        age = time.monotonic() - t_connect
        self.assertIsNotNone(first, "the daemon's backend socket")
        L.log(f"backend socket {age:.3f}s after connect, half-closed: {first}")
        if age < 0.9:  # before its second (a slow machine may be past it already)
            self.assertEqual(first["keepalive"], 0, "set at once: a short session pays for them")
        want = {"keepalive": 1, "idle": 7, "interval": 3, "count": 4, "user_timeout": 23000}
        L.wait_until(lambda: peer_socket_options(self.vp.proc.pid, self.backend.port) == want, 10,
                     f"the backend socket's options to become {want}")
        self.assertEqual(self.sessions(), 1)


if __name__ == "__main__":
    testmain.main()
