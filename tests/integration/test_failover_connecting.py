#!/usr/bin/python3
"""A client whose connect to the old primary is still in flight when that
backend goes down is handed to the new primary at once, on loopback with
Patroni REST stand-ins and the built daemon.

The old primary's data port is a listener whose accept queue is full
(backlog 0, one connection held by the test): Linux drops further SYNs, so
the proxy's connect to it stays in SYN_SENT, as towards a host that died.
Its check (a stand-in on another port) still answers 200, so a client
accepted now is sent to it. Then the stand-ins switch roles: a goes DOWN,
b (an echo server) comes UP.

Asserted: the client's bytes come back from b within a few seconds of the
switch. Before, the worker cut only established sessions of a backend that
went down: a session still connecting to it waited for connect_timeout
(here 6 s) and, that being past its queue_timeout (3 s), was closed without
a byte though b had been eligible for seconds.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


class FailoverWhileConnecting(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-failover-connecting")
        self.addCleanup(self.lab.close)
        self.echo_port = L.free_port()
        self.lab.spawn("echo-server", [L.PY, os.path.join(L.HERE, "echo_server.py"), str(self.echo_port)])
        self.a = L.Standin(self.lab, "a", role="primary")
        self.b = L.Standin(self.lab, "b", role="replica")
        L.wait_until(lambda: L.echo(self.echo_port) == b"ping", 10, "echo server")
        # a's data port: SYNs beyond the one queued connection are dropped.
        self.dead = socket.socket()
        self.dead.bind(("127.0.0.1", 0))
        self.dead.listen(0)
        self.addCleanup(self.dead.close)
        self.filler = socket.create_connection(self.dead.getsockname(), timeout=5)
        self.addCleanup(self.filler.close)
        self.listen, self.admin = L.free_port(), L.free_port()

    def backends(self):
        return {b["name"]: b for b in L.status(self.admin)["proxies"][0]["backends"]}

    def eligible(self, name):
        b = self.backends()[name]
        return b.get("eligible", b.get("up"))

    def start(self, extra):
        y = L.proxy_yaml("pg", self.listen, [("a", self.dead.getsockname()[1]), ("b", self.echo_port)],
                         [self.a.port, self.b.port], self.admin, extra=extra)
        self.vp = L.Vipproxy(self.lab, y, name="vp")
        L.wait_until(lambda: self.eligible("a") and self.eligible("b") is False, 20, "a eligible, b not")

    def test_connecting_client_goes_to_the_new_primary(self):
        self.start("connect_timeout: 6s\nqueue_timeout: 3s")
        c = socket.create_connection(("127.0.0.1", self.listen), timeout=5)
        self.addCleanup(c.close)
        c.sendall(b"ping")
        # The session is accepted and connecting to a (nothing established).
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["sessions_current"] == 1, 10, "session accepted")
        self.assertEqual(self.backends()["a"]["sessions"], 0)
        self.a.set_role("replica")
        self.b.set_role("primary")
        L.wait_until(lambda: self.eligible("b") and not self.eligible("a"), 10, "b eligible, a not")
        t_switch = time.monotonic()
        c.settimeout(10)
        got = b""
        try:
            while len(got) < 4:
                chunk = c.recv(16)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        took = time.monotonic() - t_switch
        L.log(f"client answered {got!r} {took:.2f}s after b became eligible")
        self.assertEqual(got, b"ping", "the client was not served by the new primary "
                         f"({took:.1f}s after the switch; connect_timeout 6s, queue_timeout 3s)")
        self.assertLess(took, 2.0, "the client waited for the connect to the dead primary")
        self.assertEqual(self.backends()["b"]["sessions"], 1)
        self.assertIsNone(self.vp.proc.poll())


if __name__ == "__main__":
    testmain.main()
