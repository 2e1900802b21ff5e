#!/usr/bin/python3
"""Clients that connect while the daemon is still starting are served.

The listeners are bound before the worker threads start, so a client may be
accepted the moment a worker runs, while the control thread is still
loading the kernel path's programs and starting the checks: that window is
what this test fills, with a client connecting in a loop from before the
daemon is spawned until it answers /status. Every client that got a
connection must then get its bytes echoed through the proxy once the
backend passes its check (queue_timeout covers the wait).

Under ThreadSanitizer (scripts/test's TSan stage) this is the test that
showed a worker reading its kernel path while the control thread was still
setting it (a data race, fixed by loading the kernel path before the
workers start).
"""
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import testmain  # noqa: E402


class StartupClients(unittest.TestCase):
    def test_clients_during_start_are_served(self):
        lab = L.Lab("vipproxy-startup")
        self.addCleanup(lab.close)
        rest = L.Standin(lab, "echo", "primary")
        echo_port, listen, admin = L.free_port(), L.free_port(), L.free_port()
        L.echo_backend(lab, "echo-server", echo_port)

        clients, stop = [], threading.Event()

        def connect_in_a_loop():
            while not stop.is_set() and len(clients) < 200:
                try:
                    clients.append(socket.create_connection(("127.0.0.1", listen), timeout=1))
                except OSError:
                    time.sleep(0.001)  # not listening yet

        t = threading.Thread(target=connect_in_a_loop)
        t.start()
        try:
            y = L.proxy_yaml("echo", listen, [("e1", echo_port)], [rest.port], admin, extra="queue_timeout: 30s",
                             interval="100ms")
            vp = L.Vipproxy(lab, y)
            up = L.wait_until(lambda: "exited" if not vp.alive() else
                              vp.status(admin)["proxies"][0]["current_backend"] == "e1" and "up", 60, "backend up")
        finally:
            stop.set()
            t.join()
        self.assertEqual(up, "up", vp.log())
        self.assertGreater(len(clients), 0, "no client got a connection while the daemon started")
        for i, c in enumerate(clients):
            c.settimeout(30)
            msg = f"client {i}\n".encode()
            c.sendall(msg)
            got = b""
            while len(got) < len(msg):
                d = c.recv(4096)
                self.assertTrue(d, f"client {i} of {len(clients)}: closed before its echo")
                got += d
            self.assertEqual(got, msg)
            c.close()
        self.assertTrue(vp.alive(), vp.log())


if __name__ == "__main__":
    testmain.main()
