#!/usr/bin/python3
"""test_hup_at_stop.py with VRRP, in network namespaces this test creates and
deletes (tests/integration/netns.py); root, `ip netns`.

With VRRP instances, SIGTERM's handler first shuts the instances down
(priority 0, VIPs removed) and posts stop() after it: a SIGHUP handler
queued in the same turn of the loop ran in between, before stop() said the
daemon was stopping, and reloaded the stopped VRRP service. Here the reload
adds an instance (VI_2, VRID 62, VIP .161) while the first one was MASTER.

Asserted: the daemon exits 0 within 15 s, no SIGHUP line follows "received
signal 15" in its log, VI_2 never starts and its VIP never appears on a.
"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from netns import log, wait_until  # noqa: E402
from test_hup_at_stop import holds_open, pending  # noqa: E402
import testmain  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
VIPPROXY = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE_DIR, "build", "vipproxy"))
OCTET = 126  # grep tests/ scripts/ for 10.88.: unused elsewhere
VIP, VIP2 = f"10.88.{OCTET}.160", f"10.88.{OCTET}.161"
LAB = None


def instance(name, vrid, vip):
    return (f"  - name: {name}\n    interface: eth0\n    virtual_router_id: {vrid}\n    priority: 100\n"
            f"    version: 3\n    advert_int: 100ms\n    virtual_ipaddresses:\n      - {{address: {vip}, prefix: 24}}\n")


YAML = "node: a\nlog_level: info\nadmin:\n  enabled: false\nvrrp:\n" + instance("VI_1", 71, VIP)


class HupAtStopNetns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global LAB
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (network namespaces)")
        if not os.path.exists(VIPPROXY):
            raise RuntimeError(f"vipproxy binary not found at {VIPPROXY} (set VIPPROXY_BIN)")
        LAB = netns.Lab(third_octet=OCTET)
        LAB.add_node("a", 151)
        log(f"lab: namespaces {LAB.namespaces}, logs in {LAB.dir}")

    @classmethod
    def tearDownClass(cls):
        LAB.close()

    def tearDown(self):
        LAB.stop_all()
        for vip in (VIP, VIP2):
            LAB.sh("a", ["ip", "addr", "del", f"{vip}/24", "dev", "eth0"], check=False)

    def test_sighup_queued_behind_sigterm_is_not_applied_to_stopped_instances(self):
        config = os.path.join(LAB.dir, "vipproxy.yaml")
        with open(config, "w") as f:
            f.write(YAML)
        vp = LAB.spawn("vipproxy", "a", [VIPPROXY, "--config", config])
        wait_until(lambda: LAB.has_address("a", VIP), 10, "VIP on a (MASTER)")
        fifo = config + ".fifo"
        os.mkfifo(fifo)
        w = os.open(fifo, os.O_RDWR)  # a writer: the daemon's read waits for data
        try:
            os.replace(fifo, config)
            vp.send_signal(signal.SIGHUP)
            wait_until(lambda: holds_open(vp.pid, config), 10, "the first reload reading the FIFO")
            for sig in (signal.SIGTERM, signal.SIGHUP):
                vp.send_signal(sig)
                wait_until(lambda: not pending(vp.pid, sig), 10, f"{sig.name} delivered")
            with open(config + ".tmp", "w") as f:
                f.write(YAML + instance("VI_2", 72, VIP2))
            os.replace(config + ".tmp", config)
            os.write(w, (YAML + "# the same file, another comment\n").encode())
        finally:
            os.close(w)
        try:
            wait_until(lambda: vp.poll() is not None, 15, "the daemon exits")
        except AssertionError:
            self.fail("the daemon did not exit:\n" + LAB.logtail("vipproxy", 60))
        out = LAB.logtail("vipproxy", 200)
        self.assertEqual(vp.returncode, 0, out)
        after = out[out.index("received signal 15"):]
        self.assertNotIn("SIGHUP", after, out)
        self.assertNotIn("VI_2", out, out)
        self.assertFalse(LAB.has_address("a", VIP2), out)


if __name__ == "__main__":
    testmain.main()
