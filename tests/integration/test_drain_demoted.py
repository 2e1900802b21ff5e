#!/usr/bin/python3
"""Sessions that drain (of a backend a SIGHUP removed, or at SIGTERM) are
cut when their node is demoted meanwhile, on loopback with Patroni REST
stand-ins and the built daemon.

(1) Backend a renamed by SIGHUP (same address: the daemon treats it as a
removal and an addition), hard_stop_after 30 s: the old backend's session
drains; the node is demoted; the session is closed at once. Before, the
removed backend's checker was stopped at the reload and the new one's DOWN
cut only the new runtime's sessions: the old session still echoed 3 s after
the demotion (until hard_stop_after).

(2) SIGTERM, hard_stop_after 30 s: the session drains; the node is
demoted; the session is closed at once (and the daemon then exits). Before,
Daemon::stop() stopped every check before the drain, so nothing noticed.
"""
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


def closed(c):
    """Whether the proxy closed the echo session `c` (an echo means open)."""
    try:
        c.sendall(b"x")
        return c.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


class DrainedSessionOfDemotedNode(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-drain-demoted")
        self.addCleanup(self.lab.close)
        self.echo_port = L.echo_backend(self.lab, "echo-server")
        self.a = L.Standin(self.lab, "a", role="primary")
        self.b = L.Standin(self.lab, "b", role="replica")
        self.listen, self.admin = L.free_port(), L.free_port()
        self.unused = L.free_port()  # b's data port: never connected to
        self.vp = L.Vipproxy(self.lab, self.config("a"), name="vp")
        L.wait_until(lambda: self.eligible("a"), 20, "a eligible")

    def config(self, name_of_a):
        return L.proxy_yaml("pg", self.listen, [(name_of_a, self.echo_port), ("b", self.unused)],
                            [self.a.port, self.b.port], self.admin, fall=1).replace(
                                "node: it\n", "node: it\nhard_stop_after: 30s\n")

    def eligible(self, name):
        for b in L.status(self.admin)["proxies"][0]["backends"]:
            if b["name"] == name:
                return b["eligible"]
        return None

    def test_renamed_backend_demoted_during_drain(self):
        c = socket.create_connection(("127.0.0.1", self.listen), timeout=5)
        self.addCleanup(c.close)
        c.sendall(b"one")
        self.assertEqual(c.recv(3), b"one")
        with open(self.vp.config + ".tmp", "w") as f:
            f.write(self.config("a-renamed"))
        os.replace(self.vp.config + ".tmp", self.vp.config)
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["applied"] == 1, 10, "reload applied")
        L.wait_until(lambda: self.eligible("a-renamed"), 10, "a-renamed eligible")
        c.sendall(b"two")
        self.assertEqual(c.recv(3), b"two", "the drained session goes on (hard_stop_after 30 s)")
        # The node is demoted: its check (the same Patroni) says so.
        self.a.set_role("replica")
        self.b.set_role("primary")
        L.wait_until(lambda: self.eligible("a-renamed") is False, 10, "a-renamed DOWN")
        t_down = time.monotonic()
        c.settimeout(5)

        try:
            L.wait_until(lambda: closed(c), 3, "the drained session of the demoted node closed")
        finally:
            L.log(f"{time.monotonic() - t_down:.2f}s after the demotion, sessions of a-renamed: "
                  f"{self.sessions('a-renamed')}, proxy sessions: "
                  f"{L.status(self.admin)['proxies'][0]['sessions_current']}")

    def test_stop_drain_then_node_demoted(self):
        c = socket.create_connection(("127.0.0.1", self.listen), timeout=5)
        self.addCleanup(c.close)
        c.sendall(b"one")
        self.assertEqual(c.recv(3), b"one")
        self.vp.proc.send_signal(signal.SIGTERM)

        def refused():
            try:
                socket.create_connection(("127.0.0.1", self.listen), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True

        L.wait_until(refused, 10, "listener closed (draining)")
        c.sendall(b"two")
        self.assertEqual(c.recv(3), b"two", "the session drains (hard_stop_after 30 s)")
        self.a.set_role("replica")
        self.b.set_role("primary")
        t_down = time.monotonic()
        c.settimeout(5)

        try:
            # fall 1 x interval 200 ms, and a margin.
            L.wait_until(lambda: closed(c), 3, "the draining session of the demoted node closed")
        finally:
            L.log(f"{time.monotonic() - t_down:.2f}s after the demotion; daemon alive: {self.vp.alive()}")

    def sessions(self, name):
        for b in L.status(self.admin)["proxies"][0]["backends"]:
            if b["name"] == name:
                return b["sessions"]
        return None

if __name__ == "__main__":
    testmain.main()
