#!/usr/bin/python3
"""tcp_user_timeout still finds a dead client now that a paused one is not
cut (Session::on_stall takes TCP_USER_TIMEOUT off a socket whose window is
closed: Linux 5.11+ would otherwise abort a reader that only paused;
test_data_path test_e). Per data path, splice and kernel (skipped where the
kernel path cannot load):

  - a client that vanishes while the proxy sends it a bulk reply (bytes in
    flight, unacknowledged): its session ends within a few
    tcp_user_timeout (1 s here);
  - a client that first stops reading (window closed, the option off) and
    then vanishes: once two window probes in a row go unanswered the option
    is back on, and the session ends within 30 s (without that, the kernel
    would give up only after tcp_retries2 unanswered probes, ~13 min).

Topology (netns.Lab, 10.88.121.0/24): node p (.1) runs vipproxy in front of
a backend and a Patroni stand-in on its loopback; node c (.2) is the client.
The client "vanishes" when its eth0 goes down: nothing it sent is answered.
"""
import json
import os
import socket
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import netns  # noqa: E402
import testmain  # noqa: E402
from test_data_path import Backend, exchanges  # noqa: E402

OCTET = 121  # 10.88.121.0/24: no other test uses it (grep tests/ scripts/ for 10.88.)
PORT, ADMIN, REST = 15433, 18080, 18008


class DeadPeer(unittest.TestCase):
    def setUp(self):
        self.lab = netns.Lab(third_octet=OCTET)
        self.addCleanup(self.lab.close)
        self.p = self.lab.add_node("p", 1)
        self.c = self.lab.add_node("c", 2)

    def start(self, data_path):
        with netns.in_netns(self.p):
            backend = Backend()  # its listening socket in p
        backend.start()
        role = os.path.join(self.lab.dir, "role")
        with open(role, "w") as f:
            f.write("primary\n")
        stats = os.path.join(self.lab.dir, "stats.json")
        self.lab.standin("p", REST, role, stats)
        y = L.proxy_yaml("dp", PORT, [("be", backend.port)], [REST], ADMIN,
                         extra=f"data_path: {data_path}\ntcp_user_timeout: 1s")
        y = y.replace(f"listen: 127.0.0.1:{PORT}", f"listen: 10.88.{OCTET}.1:{PORT}")
        cfg = os.path.join(self.lab.dir, "vp.yaml")
        with open(cfg, "w") as f:
            f.write(y)
        self.vp = self.lab.spawn("vipproxy", "p", [L.VIPPROXY, "--config", cfg],
                                 env=dict(os.environ, VIPPROXY_KERNEL_AFTER_EXCHANGES="1"))
        netns.wait_until(lambda: os.path.exists(stats) and self.status()["proxies"][0]["current_backend"], 20,
                         "backend up", 0.2)
        kp = self.status()["kernel_path"]
        if data_path == "kernel" and not kp["available"]:
            raise unittest.SkipTest(f"the kernel path is not available here: {kp['why_not']}")

    def status(self):
        with netns.in_netns(self.p):
            with urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/status", timeout=5) as r:
                return json.load(r)

    def sessions(self):
        return self.status()["proxies"][0]["sessions_current"]

    def client_vanishes(self, data_path, pause_first):
        self.start(data_path)
        with netns.in_netns(self.c):
            s = socket.create_connection((f"10.88.{OCTET}.1", PORT), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        exchanges(s, 3)
        if data_path == "kernel":
            netns.wait_until(lambda: self.status()["proxies"][0]["counters"]["sessions_kernel"] >= 1, 5,
                             "the session in the kernel", 0.1)
        s.sendall(b"bulk %d\n" % (64 << 20))
        got = 0
        while got < (1 << 20):
            got += len(s.recv(1 << 20))
        if pause_first:
            time.sleep(3.0)  # the point is a reader that stops for a while: window closed, option off
            self.assertEqual(self.sessions(), 1, "a paused client was cut")
        self.lab.sh("c", ["ip", "link", "set", "eth0", "down"])
        t0 = time.monotonic()
        bound = 30 if pause_first else 5
        netns.wait_until(lambda: self.sessions() == 0, bound, "the dead client's session to end", 0.1)
        L.log(f"{data_path}: the session ended {time.monotonic() - t0:.1f} s after the client vanished"
              f"{' (paused first)' if pause_first else ''}")
        s.close()

    def test_1_splice_dead_with_bytes_in_flight(self):
        self.client_vanishes("splice", False)

    def test_2_splice_dead_after_a_pause(self):
        self.client_vanishes("splice", True)

    def test_3_kernel_dead_with_bytes_in_flight(self):
        self.client_vanishes("kernel", False)

    def test_4_kernel_dead_after_a_pause(self):
        self.client_vanishes("kernel", True)


if __name__ == "__main__":
    testmain.main()
