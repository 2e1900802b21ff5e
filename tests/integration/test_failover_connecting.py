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

The same connect in flight when a reload removes backend a (the client goes
to b at once) or the whole proxy (the client is turned away at once, as the
proxy's waiting clients are). Before, the reload left connecting sessions
alone: the first waited for connect_timeout, the second for queue_timeout
in a proxy that no longer existed.
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


class FailoverWhileConnecting(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-failover-connecting")
        self.addCleanup(self.lab.close)
        self.echo_port = L.echo_backend(self.lab, "echo-server")
        self.a = L.Standin(self.lab, "a", role="primary")
        self.b = L.Standin(self.lab, "b", role="replica")
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

    def yaml(self, extra, name="pg", backends=("a", "b")):
        ports = {"a": (self.dead.getsockname()[1], self.a.port), "b": (self.echo_port, self.b.port)}
        return L.proxy_yaml(name, self.listen if name == "pg" else self.listen2,
                            [(n, ports[n][0]) for n in backends], [ports[n][1] for n in backends],
                            self.admin, extra=extra, fall=1)  # a dead backend left at its first failed check

    def start(self, extra):
        self.listen2 = L.free_port()
        self.vp = L.Vipproxy(self.lab, self.yaml(extra), name="vp")
        L.wait_until(lambda: self.eligible("a") and self.eligible("b") is False, 20, "a eligible, b not")

    def connecting_client(self):
        """A client accepted and connecting to a (nothing established)."""
        c = socket.create_connection(("127.0.0.1", self.listen), timeout=5)
        self.addCleanup(c.close)
        c.sendall(b"ping")
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["sessions_current"] == 1, 10, "session accepted")
        self.assertEqual(self.backends()["a"]["sessions"], 0)
        return c

    def reload(self, yaml_text):
        with open(self.vp.config, "w") as f:
            f.write(yaml_text)
        applied = L.status(self.admin)["reloads"]["applied"]
        self.vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["applied"] > applied, 10, "reload applied")
        return time.monotonic()

    @staticmethod
    def read_until_closed(c, want, timeout=10):
        """What the client reads until `want` bytes came or the connection ended."""
        c.settimeout(timeout)
        got = b""
        try:
            while len(got) < want:
                chunk = c.recv(16)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return got

    def test_connecting_client_goes_to_the_new_primary(self):
        self.start("connect_timeout: 6s\nqueue_timeout: 3s")
        c = self.connecting_client()
        self.a.set_role("replica")
        self.b.set_role("primary")
        L.wait_until(lambda: self.eligible("b") and not self.eligible("a"), 10, "b eligible, a not")
        t_switch = time.monotonic()
        got = self.read_until_closed(c, 4)
        took = time.monotonic() - t_switch
        L.log(f"client answered {got!r} {took:.2f}s after b became eligible")
        self.assertEqual(got, b"ping", "the client was not served by the new primary "
                         f"({took:.1f}s after the switch; connect_timeout 6s, queue_timeout 3s)")
        self.assertLess(took, 2.0, "the client waited for the connect to the dead primary")
        self.assertEqual(self.backends()["b"]["sessions"], 1)
        self.assertIsNone(self.vp.proc.poll())

    def test_reload_removing_the_backend_sends_the_client_elsewhere(self):
        self.start("connect_timeout: 8s\nqueue_timeout: 8s")
        c = self.connecting_client()
        self.b.set_role("primary")  # eligible too; `first` keeps a current
        L.wait_until(lambda: self.eligible("b"), 10, "b eligible")
        t_reload = self.reload(self.yaml("connect_timeout: 8s\nqueue_timeout: 8s", backends=("b",)))
        got = self.read_until_closed(c, 4)
        took = time.monotonic() - t_reload
        L.log(f"client answered {got!r} {took:.2f}s after the reload removed a")
        self.assertEqual(got, b"ping", f"the client was not served by b ({took:.1f}s after the reload)")
        self.assertLess(took, 2.0, "the client waited for the connect to the removed backend")
        self.assertEqual(self.backends()["b"]["sessions"], 1)
        self.assertIsNone(self.vp.proc.poll())

    def test_reload_removing_the_proxy_turns_the_client_away(self):
        self.start("connect_timeout: 8s\nqueue_timeout: 8s")
        c = self.connecting_client()
        t_reload = self.reload(self.yaml("connect_timeout: 8s\nqueue_timeout: 8s", name="other", backends=("b",)))
        got = self.read_until_closed(c, 4)
        took = time.monotonic() - t_reload
        L.log(f"client read {got!r}, closed {took:.2f}s after the reload removed its proxy")
        self.assertEqual(got, b"")
        self.assertLess(took, 2.0, "the client waited in a removed proxy (queue_timeout 8 s)")
        self.assertIsNone(self.vp.proc.poll())


if __name__ == "__main__":
    testmain.main()
