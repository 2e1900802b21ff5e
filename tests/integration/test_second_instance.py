#!/usr/bin/python3
"""A second daemon started by mistake on the same file refuses to start.

Every worker binds its listener with SO_REUSEPORT (proxy/worker.h), and the
kernel lets any process of the same user join such a group: a second
`vipproxy -c FILE` (an operator trying the file by hand beside the unit, a
second unit on the same file) bound every listen address of the running
one and the kernel split the clients between the two daemons, silently.
With the admin endpoint enabled the second one failed only at the admin
port, after its listeners had joined the group (clients accepted by it in
that moment were reset when it exited); with `admin: {enabled: false}` it
ran for good. keepalived refuses a second instance ("daemon is already
running"); vipproxy now does too: before it binds anything, each listen
address is bound once without SO_REUSEPORT, which the kernel refuses while
another socket listens there, and the start fails naming the proxy and the
address.

1. admin disabled: the second daemon exits 1 within the deadline, its log
   names the proxy and its address, and the first keeps serving.
2. admin enabled (the default): the second daemon's error is the proxy's
   listen address (refused before any listener or the admin port is bound),
   not the admin port.
3. A SIGHUP that adds a proxy on an address where another program of the
   same user listens with SO_REUSEPORT (here a Python socket): the reload
   is refused (counted as failed, the log names the address), the running
   configuration kept. Before, the reload applied and the kernel split that
   address's clients between the program and the daemon.
"""
import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


class SecondInstance(unittest.TestCase):
    def start_first(self, admin_enabled):
        lab = L.Lab("vipproxy-second")
        self.addCleanup(lab.close)
        rest = L.Standin(lab, "echo", "primary")
        echo_port, listen, admin = L.free_port(), L.free_port(), L.free_port()
        L.echo_backend(lab, "echo-server", echo_port)
        y = L.proxy_yaml("echo", listen, [("e1", echo_port)], [rest.port], admin, interval="100ms")
        if not admin_enabled:
            y = y.replace("admin:\n", "admin:\n  enabled: false\n")
        first = L.Vipproxy(lab, y, name="first")
        L.wait_until(lambda: L.echo(listen, b"first up\n") == b"first up\n", 30, "first daemon serves")
        return lab, y, listen, first

    def start_second(self, lab, y):
        second = L.Vipproxy(lab, y, name="second")
        try:
            L.wait_until(lambda: not second.alive(), 15, "the second daemon exits")
        except Exception:
            self.fail("the second daemon on the same file is still running:\n" + second.log())
        return second

    def test_1_second_daemon_without_admin_refuses(self):
        lab, y, listen, first = self.start_first(admin_enabled=False)
        second = self.start_second(lab, y)
        self.assertEqual(second.proc.returncode, 1, second.log())
        self.assertIn(f"proxy echo: cannot listen on 127.0.0.1:{listen}", second.log())
        self.assertIn("already listens there", second.log())
        self.assertTrue(first.alive(), first.log())
        for i in range(20):
            msg = f"after {i}\n".encode()
            self.assertEqual(L.echo(listen, msg), msg)

    def test_2_second_daemon_names_the_listen_address_not_the_admin_port(self):
        lab, y, listen, first = self.start_first(admin_enabled=True)
        second = self.start_second(lab, y)
        self.assertEqual(second.proc.returncode, 1, second.log())
        self.assertIn(f"proxy echo: cannot listen on 127.0.0.1:{listen}", second.log())
        self.assertNotIn("admin: cannot listen", second.log())
        self.assertTrue(first.alive(), first.log())

    def test_3_reload_onto_an_address_another_program_listens_on_is_refused(self):
        lab, y, listen, first = self.start_first(admin_enabled=True)
        admin = int(y.split("listen: 127.0.0.1:")[1].split()[0])
        other_port = L.free_port()
        other = socket.socket()
        self.addCleanup(other.close)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", other_port))
        other.listen(16)
        echo_port = int(y.split("address: 127.0.0.1:")[1].split()[0])
        check_port = int(y.split("check_port: ")[1].split()[0])
        added = L.proxy_yaml("other", other_port, [("e1", echo_port)], [check_port], admin, interval="100ms")
        with open(first.config, "w") as f:
            f.write(y + added[added.index("  - name: other"):])
        before = first.status(admin)["reloads"]
        first.proc.send_signal(signal.SIGHUP)
        want = {"applied": before["applied"], "failed": before["failed"] + 1}
        L.wait_until(lambda: first.status(admin)["reloads"] == want, 15, f"reload counters {want}")
        self.assertIn(f"proxy other: cannot listen on 127.0.0.1:{other_port}: another process already listens",
                      first.log())
        self.assertEqual([p["name"] for p in first.status(admin)["proxies"]], ["echo"])
        self.assertTrue(first.alive(), first.log())


if __name__ == "__main__":
    testmain.main()
