#!/usr/bin/python3
"""Listen addresses across a reload: clashes only a lookup reveals, and the
clients queued on a listener that a reload closes.

Two proxies whose listen addresses are one address only once looked up:

The loader refuses two proxies on one address:port as written (cfg_test
cross_checks), but `localhost:P` and the literal `localhost` stands for
(`127.0.0.1:P` or `[::1]:P`, whichever glibc lists first) cannot be compared
before the lookup. Every worker binds with SO_REUSEPORT, so the kernel took
both binds and split the clients between the two proxies, each with its own
backends and checks. The daemon now compares the addresses bound: such a file
is refused at start (exit code 1, both proxies named) and by a reload (the
running configuration stays), while the same proxy moving from the name to
its literal is a reload like any other.

A reload that closes a listener (its proxy renamed, or its address written
another way) used to reset the clients TCP had already accepted on it and
the worker had not (`maxconn` reached, or just arrived): they are now taken
over by the proxy that listens there after the reload, even past maxconn.

On loopback, with a Patroni REST stand-in and an echo server as the backend.
"""
import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


def literal_of_localhost(port):
    """The address the daemon binds for `localhost` (getaddrinfo, AF_UNSPEC,
    AI_PASSIVE, first answer), as a listen value."""
    host = socket.getaddrinfo("localhost", port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0][4][0]
    return host, (f"'[{host}]:{port}'" if ":" in host else f"{host}:{port}")


class ListenRebind(unittest.TestCase):
    def setUp(self):
        self.lab = L.Lab("vipproxy-listen-clash")
        self.addCleanup(self.lab.close)
        self.echo_port = L.echo_backend(self.lab, "echo-server")
        self.rest = L.Standin(self.lab, "node1", role="primary")
        self.port, self.admin = L.free_port(), L.free_port()
        self.host, self.literal = literal_of_localhost(self.port)

    def proxy(self, name, listen, extra=""):
        """A proxy block listening on `listen` (as written in YAML)."""
        text = L.proxy_yaml(name, self.port, [("node1", self.echo_port)], [self.rest.port], self.admin, extra=extra)
        block = text[text.index(f"  - name: {name}\n"):]
        return block.replace(f"listen: 127.0.0.1:{self.port}", f"listen: {listen}")

    def config(self, *proxies, extra=""):
        head = L.proxy_yaml("x", self.port, [], [], self.admin)
        return head[:head.index("  - name: x\n")] + "".join(self.proxy(n, l, extra) for n, l in proxies)

    def test_1_refused_at_start(self):
        vp = L.Vipproxy(self.lab, self.config(("a", f"localhost:{self.port}"), ("b", self.literal)), name="vp")
        L.wait_until(lambda: not vp.alive(), 20, "the daemon to refuse the file and exit")
        self.assertEqual(vp.proc.returncode, 1)
        self.assertIn(f"proxy b: listen {self.literal.strip(chr(39))} clashes with proxy a's localhost:{self.port}",
                      vp.log(20))

    def test_2_refused_by_reload(self):
        vp = L.Vipproxy(self.lab, self.config(("a", f"localhost:{self.port}")), name="vp")
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "node1", 20, "a up")
        with open(vp.config, "w") as f:
            f.write(self.config(("a", f"localhost:{self.port}"), ("b", self.literal)))
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["failed"] == 1, 20, "the reload refused")
        self.assertEqual([p["name"] for p in L.status(self.admin)["proxies"]], ["a"])
        self.assertIn("clashes with proxy a's localhost", vp.log(20))
        self.assertEqual(L.echo(self.port, host=self.host), b"ping", "a still serves")
        # The same proxy moving from the name to its literal is no clash,
        # and b on a port of its own is welcome.
        other = L.free_port()
        with open(vp.config, "w") as f:
            f.write(self.config(("a", self.literal), ("b", f"localhost:{other}")))
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"] == {"applied": 1, "failed": 1}, 20, "the reload applied")
        L.wait_until(lambda: all(p["current_backend"] == "node1" for p in L.status(self.admin)["proxies"]), 20,
                     "a and b up")
        self.assertEqual(L.echo(self.port, host=self.host), b"ping")
        self.assertEqual(L.echo(other, host=self.host), b"ping")


    def queued_clients_survive(self, before, after):
        """Starts with proxy `before` (name, listen) at maxconn 1, one session
        open and two clients queued in the kernel behind it, reloads to
        `after`: the queued clients are served, not reset."""
        vp = L.Vipproxy(self.lab, self.config(before, extra="maxconn: 1"), name="vp")
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["current_backend"] == "node1", 20, "up")
        first = socket.create_connection((self.host, self.port), timeout=5)
        self.addCleanup(first.close)
        first.sendall(b"a")
        self.assertEqual(first.recv(10), b"a")
        queued = []
        for payload in (b"b", b"c"):
            c = socket.create_connection((self.host, self.port), timeout=5)  # TCP accepts it; maxconn holds it
            self.addCleanup(c.close)
            c.sendall(payload)
            queued.append((c, payload))
        L.wait_until(lambda: L.status(self.admin)["proxies"][0]["counters"]["maxconn_pauses"] >= 1, 10, "maxconn reached")
        with open(vp.config, "w") as f:
            f.write(self.config(after, extra="maxconn: 1"))
        vp.proc.send_signal(signal.SIGHUP)
        L.wait_until(lambda: L.status(self.admin)["reloads"]["applied"] == 1, 20, "the reload")
        for c, payload in queued:
            self.assertEqual(c.recv(10), payload, "a client queued on the closed listener is served")
        self.assertIn("queued on the listener a reload closes taken over", vp.log(100))

    def test_3_renamed_proxy_takes_the_queued_clients(self):
        self.queued_clients_survive(("a", self.literal), ("b", self.literal))

    def test_4_respelled_listen_keeps_the_queued_clients(self):
        self.queued_clients_survive(("a", self.literal), ("a", f"localhost:{self.port}"))


if __name__ == "__main__":
    testmain.main()
