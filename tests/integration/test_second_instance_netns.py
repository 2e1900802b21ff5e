#!/usr/bin/python3
"""A second daemon on the same host and VRRP instance refuses to start, and
leaves the running master's VIP alone. In network namespaces this test
creates and deletes (tests/integration/netns.py); root, `ip netns`.

A file with VRRP instances and no proxy, admin endpoint off (keepalived's
job alone: nothing else a second daemon would fail to bind). Node a runs
vipproxy as MASTER of VRID 61 with the VIP 10.88.125.160; then a second
vipproxy is started by mistake in the same namespace on the same file.

Before, the second daemon started: its instance found the VIP on eth0 with
vipproxy's mark (IFA_PROTO 112, vrrp/vips.h), took it for a leftover of a
killed run and removed it from under the running MASTER, and then ran a
second VRRP router with the same VRID and the same primary address on the
same link. Now every VRRP instance holds a per-namespace lock (interface,
family, VRID: daemon/instance_lock.h) for the daemon's life, taken before
any instance is prepared: the second daemon exits 1 naming the instance,
and the VIP never leaves a.

1. The second daemon exits 1 within 10 s, its log names VI_1, eth0 and the
   VRID; the VIP stays on a for 2 s after (20 of the master's adverts), and
   the first daemon is alive.
2. Once the first daemon has stopped (SIGTERM), the same file starts (the
   lock goes with the process) and its instance becomes MASTER.
3. A second daemon with another file (VRID 62, another VIP) runs beside the
   first; a SIGHUP that gives it VRID 61 is refused (the log names the
   instance), it keeps running VRID 62 with its VIP, and the first keeps
   its VIP. A SIGHUP to VRID 63 is then applied, and the lock of VRID 62
   released with it (`ss -xap`: the locks of VRID 61 and 63 only).
"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from netns import hold, log, wait_until  # noqa: E402
import testmain  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
VIPPROXY = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE_DIR, "build", "vipproxy"))
OCTET = 125  # grep tests/ scripts/ for 10.88.: unused elsewhere
VIP = f"10.88.{OCTET}.160"
VRID = 61
LAB = None

YAML = f"""node: a
log_level: info
admin:
  enabled: false
vrrp:
  - name: VI_1
    interface: eth0
    virtual_router_id: {VRID}
    priority: 100
    version: 3
    advert_int: 100ms
    virtual_ipaddresses:
      - {{address: {VIP}, prefix: 24}}
"""


class SecondInstanceNetns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global LAB
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (network namespaces)")
        if not os.path.exists(VIPPROXY):
            raise RuntimeError(f"vipproxy binary not found at {VIPPROXY} (set VIPPROXY_BIN)")
        LAB = netns.Lab(third_octet=OCTET)
        LAB.add_node("a", 151)
        cls.config = os.path.join(LAB.dir, "vipproxy.yaml")
        with open(cls.config, "w") as f:
            f.write(YAML)
        log(f"lab: namespaces {LAB.namespaces}, logs in {LAB.dir}")

    @classmethod
    def tearDownClass(cls):
        LAB.close()

    def tearDown(self):
        LAB.stop_all()
        LAB.sh("a", ["ip", "addr", "del", f"{VIP}/24", "dev", "eth0"], check=False)

    def start(self, name, config=None):
        return LAB.spawn(name, "a", [VIPPROXY, "--config", config or self.config])

    def test_1_second_daemon_refuses_and_leaves_the_vip(self):
        first = self.start("first")
        wait_until(lambda: LAB.has_address("a", VIP), 10, "VIP on a (first daemon MASTER)")
        second = self.start("second")
        try:
            wait_until(lambda: second.poll() is not None, 10, "the second daemon exits")
        except AssertionError:
            self.fail("the second daemon on the same VRRP instance is still running:\n" + LAB.logtail("second"))
        self.assertEqual(second.returncode, 1, LAB.logtail("second"))
        out = LAB.logtail("second")
        self.assertIn(f"vrrp VI_1: another vipproxy already runs VRID {VRID} (IPv4) on eth0", out)
        hold(lambda: LAB.has_address("a", VIP), 2, "VIP on a after the second daemon's refused start")
        self.assertIsNone(first.poll(), LAB.logtail("first"))

    def test_2_the_same_file_starts_once_the_first_daemon_stopped(self):
        first = self.start("first")
        wait_until(lambda: LAB.has_address("a", VIP), 10, "VIP on a (first daemon MASTER)")
        LAB.stop(first, signal.SIGTERM)
        self.assertEqual(first.returncode, 0, LAB.logtail("first"))
        again = self.start("again")
        wait_until(lambda: again.poll() is not None or LAB.has_address("a", VIP), 10, "VIP on a again")
        self.assertIsNone(again.poll(), LAB.logtail("again"))

    def test_3_reload_onto_the_running_instance_of_another_daemon_is_refused(self):
        first = self.start("first")
        wait_until(lambda: LAB.has_address("a", VIP), 10, "VIP on a (first daemon MASTER)")
        other_vip = f"10.88.{OCTET}.161"
        other_yaml = YAML.replace(f"virtual_router_id: {VRID}", "virtual_router_id: 62").replace(VIP, other_vip)
        other_config = os.path.join(LAB.dir, "other.yaml")

        def write(text):
            with open(other_config + ".tmp", "w") as f:
                f.write(text)
            os.replace(other_config + ".tmp", other_config)
        write(other_yaml)
        other = self.start("other", other_config)
        wait_until(lambda: LAB.has_address("a", other_vip), 10, "the other daemon's VIP on a")
        write(other_yaml.replace("virtual_router_id: 62", f"virtual_router_id: {VRID}"))
        other.send_signal(signal.SIGHUP)
        wait_until(lambda: "SIGHUP: reload failed" in LAB.logtail("other"), 10, "the reload refused")
        self.assertIn(f"vrrp VI_1: another vipproxy already runs VRID {VRID} (IPv4) on eth0", LAB.logtail("other"))
        hold(lambda: LAB.has_address("a", VIP) and LAB.has_address("a", other_vip), 1, "both VIPs on a")
        self.assertIsNone(other.poll(), LAB.logtail("other"))
        self.assertIsNone(first.poll(), LAB.logtail("first"))
        # A reload to a free VRID is applied, and the lock of the VRID left
        # is released with it.
        write(other_yaml.replace("virtual_router_id: 62", "virtual_router_id: 63"))
        other.send_signal(signal.SIGHUP)
        wait_until(lambda: f"SIGHUP: {other_config} applied" in LAB.logtail("other"), 10, "the reload to VRID 63")

        def locks():
            out = LAB.sh("a", ["ss", "-Hxap"]).stdout
            return sorted(w for w in out.split() if w.startswith("@vipproxy/vrrp/"))
        self.assertEqual(locks(), [f"@vipproxy/vrrp/eth0/ipv4/{n}" for n in (VRID, 63)])


if __name__ == "__main__":
    testmain.main()
