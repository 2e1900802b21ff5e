#!/usr/bin/python3
"""A check whose host name a name server never answers delays no other check.

Checks by host name used Asio's resolver, which runs every lookup of the
control thread's io_context on one private thread: one name stuck on a
silent name server (glibc waits its timeout, 5 s per try and server by
default) held every other name's lookup behind it, so a healthy backend
whose name the hosts file knows timed out its checks and went DOWN; and the
pending call kept the control loop, and the daemon, running after SIGTERM.
Now each name is looked up on a thread of its own, one at a time per name
(health/name_lookup.h).

In a network namespace whose /etc/resolv.conf (`ip netns exec` mounts
/etc/netns/NAME/resolv.conf and hosts over /etc's) names a server on the
namespace's loopback that reads queries and never answers
(`options timeout:30 attempts:1`: glibc alone waits 30 s), one proxy has two
backends checked by host name, every 300 ms with a 1 s timeout and fall 2.
Both names are in the namespace's hosts file at start (the daemon resolves
backend addresses once, blocking, before it serves); then the test cuts the
second name out of the file, so only the silent server could answer it:
  1. the backend whose name the hosts file knows stays UP over some 25
     checks, none failing (the old code: DOWN within seconds, its checks
     queued behind the silent lookup);
  2. the other is DOWN, each of its checks reporting "name resolution timed
     out after 1000ms", while the name server saw one lookup only and the
     daemon's thread count stayed flat (its checks join the pending lookup);
  3. SIGTERM stops the daemon within 2 s although that lookup still waits.
"""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import netns  # noqa: E402
from netns import log, wait_until  # noqa: E402
import testmain  # noqa: E402

OCTET = 118  # 10.88.118.0/24: no other test uses it (grep tests/ scripts/ for 10.88.)
KNOWN = "good-backend.vipproxy.test"
SILENT = "only-dns-knows.vipproxy.test"
WATCH = 8.0  # seconds of checks watched once the silent lookup is pending

SILENT_DNS = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open(sys.argv[1], "w").close()
n = 0
while True:
    s.recvfrom(2048)  # read and never answer: no ICMP either
    n += 1
    with open(sys.argv[1], "w") as f:
        f.write(str(n))
"""

# The second line set is a prefix of the first: cutting SILENT out is one
# truncate(2), so a lookup of KNOWN never reads a half-written file.
HOSTS_KNOWN = f"127.0.0.1 localhost\n127.0.0.1 {KNOWN}\n"
HOSTS_BOTH = HOSTS_KNOWN + f"127.0.0.1 {SILENT}\n"


class CheckDns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("network namespaces need root")
        cls.ns = netns.Lab(third_octet=OCTET)
        cls.addClassCleanup(cls.ns.close)
        cls.ns.add_node("a", 151)
        # `ip netns exec` mounts these over /etc/resolv.conf and /etc/hosts.
        cls.ns.etc_file("a", "resolv.conf", "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
        cls.hosts = cls.ns.etc_file("a", "hosts", HOSTS_BOTH)
        d = cls.ns.dir
        cls.queries_file = os.path.join(d, "dns.queries")
        cls.ns.spawn("dns", "a", [L.PY, "-c", SILENT_DNS, cls.queries_file])
        wait_until(lambda: os.path.exists(cls.queries_file), 10, "the silent name server")
        role = os.path.join(d, "rest.role")
        with open(role, "w") as f:
            f.write("primary\n")
        cls.rest_port, cls.echo_port, cls.port, cls.admin = 18008, 18009, 15433, 18405
        cls.refused_port = 18031  # nothing listens: the silent backend is DOWN from its first check
        cls.ns.spawn("rest", "a", [L.PY, os.path.join(L.HERE, "patroni_standin.py"), str(cls.rest_port), role,
                                   os.path.join(d, "rest.stats.json")])
        cls.ns.spawn("echo", "a", [L.PY, os.path.join(L.HERE, "echo_server.py"), str(cls.echo_port)])
        text = L.proxy_yaml("p", cls.port, [], [], cls.admin, interval="300ms", fall=2)
        text += (f"      - name: good\n        address: {KNOWN}:{cls.echo_port}\n"
                 f"        check_port: {cls.rest_port}\n"
                 f"      - name: silent\n        address: {SILENT}:{cls.echo_port + 1}\n"
                 f"        check_port: {cls.refused_port}\n")
        cls.config = os.path.join(d, "vipproxy.yaml")
        with open(cls.config, "w") as f:
            f.write(text)
        cls.vp = cls.ns.spawn("vipproxy", "a", [L.VIPPROXY, "--config", cls.config])
        wait_until(lambda: cls.current() == "good", 20, "the good backend up")

    @classmethod
    def status(cls):
        with netns.in_netns(cls.ns.ns("a")):
            return L.status(cls.admin)

    @classmethod
    def current(cls):
        return cls.status()["proxies"][0]["current_backend"]

    def checks(self):
        return {b["name"]: b["check"] for b in self.status()["proxies"][0]["backends"]}

    def queries(self):
        with open(self.queries_file) as f:
            return int(f.read() or 0)

    def threads(self):
        return len(os.listdir(f"/proc/{self.vp.pid}/task"))

    def test_a_silent_name_delays_no_other_check(self):
        wait_until(lambda: self.checks()["silent"]["checks"] >= 2, 10, "the silent backend's first checks")
        # Nothing is being looked up for long yet: each name is in the hosts file.
        baseline = 1 << 30
        for _ in range(20):
            baseline = min(baseline, self.threads())
            time.sleep(0.05)
        self.assertEqual(self.queries(), 0, "a name went to the name server before the test cut it out")
        # Its first check may have come before the stand-in listened.
        downs = self.ns.logtail("vipproxy", 400).count("backend p/good is DOWN")
        os.truncate(self.hosts, len(HOSTS_KNOWN))
        wait_until(lambda: self.queries() > 0, 10, "the silent name's lookup to reach the name server")
        before = self.checks()
        self.assertEqual(before["good"]["state"], "UP")
        most_threads = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < WATCH:
            c = self.checks()
            most_threads = max(most_threads, self.threads())
            self.assertEqual(c["good"]["state"], "UP", f"the good backend went DOWN: {c['good']['detail']}")
            self.assertEqual(self.current(), "good")
            time.sleep(0.1)
        after = self.checks()
        good, silent = after["good"], after["silent"]
        log(f"in {WATCH:.0f} s: good {good['checks'] - before['good']['checks']} checks, "
            f"silent {silent['checks'] - before['silent']['checks']} ({silent['detail']}); "
            f"threads {baseline} before, at most {most_threads}; {self.queries()} queries")
        # Every 300 ms, each answered at once: about 25; none failed.
        self.assertGreaterEqual(good["checks"] - before["good"]["checks"], 10, "the good backend's checks stalled")
        self.assertEqual(good["failures"], before["good"]["failures"], f"a good check failed: {good['detail']}")
        self.assertEqual(good["transitions"], before["good"]["transitions"])
        # Each silent check ends at its own deadline (1 s, then 300 ms apart).
        self.assertEqual(silent["state"], "DOWN")
        self.assertEqual(silent["detail"], "name resolution timed out after 1000ms")
        self.assertGreaterEqual(silent["checks"] - before["silent"]["checks"], 4, "the silent checks stalled")
        # One lookup for all of them: the server saw one (A and AAAA: two
        # datagrams), and the threads did not pile up: one for the silent
        # name, a hosts-file lookup of the good one caught in passing, one
        # more for a stalled machine (a thread per check would be 20 more).
        self.assertLessEqual(self.queries(), 2, "the silent name was looked up more than once")
        self.assertLessEqual(most_threads, baseline + 3, "lookup threads piled up")
        self.assertEqual(self.ns.logtail("vipproxy", 400).count("backend p/good is DOWN"), downs)

        # The lookup still waits for the server (30 s): the stop does not.
        t0 = time.monotonic()
        self.vp.send_signal(signal.SIGTERM)
        self.assertEqual(self.vp.wait(timeout=40), 0)
        took = time.monotonic() - t0
        log(f"stopped {took * 1000:.0f} ms after SIGTERM")
        self.assertLess(took, 2.0, "the stop waited for the lookup")


if __name__ == "__main__":
    testmain.main()
