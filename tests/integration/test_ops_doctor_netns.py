#!/usr/bin/python3
"""`vipproxy doctor`'s network probes where they matter: in network
namespaces of their own (netns.Lab: names vpt<pid>-*, 10.88.0.0/16 with a
blackhole route in the root namespace, all removed at the end), as on
catalog02 during the migration (docs/migrating.md step 2):

- keepalived (VRRPv2, PASS) runs on node a; doctor on node b hears its
  adverts: "heard 10.88.x.151 (v2, priority 100)";
- then vipproxy runs on node a instead: heard with its priority;
- a VRID nobody uses: WARN "no peer heard", naming the routers it did hear;
- an interface that does not exist: FAIL.

Needs root. Environment: VIPPROXY_BIN, VIPPROXY_SOURCE_DIR.
"""
import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from netns import wait_until  # noqa: E402
import testmain  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
VIPPROXY = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE_DIR, "build", "vipproxy"))
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
PASSWORD = "BacChaME"


def vrrp_yaml(node, vip, vrid=51, priority=50, interface="eth0"):
    return (f"node: {node}\nadmin:\n  listen: 127.0.0.1:8405\nvrrp:\n  - name: VI_1\n"
            f"    interface: {interface}\n    virtual_router_id: {vrid}\n    priority: {priority}\n"
            f"    version: 2\n    advert_int: 1s\n    authentication: {{type: pass, password: {PASSWORD}}}\n"
            f"    virtual_ipaddresses: [{vip}/24]\n")


class DoctorNetns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = netns.Lab(third_octet=93)
        cls.vip = f"{cls.lab.net}.160"
        cls.lab.add_node("a", 151)
        cls.lab.add_node("b", 152)
        cls.peer = None

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def tearDown(self):
        if self.peer is not None:
            self.lab.stop(self.peer)
            self.peer = None

    def write(self, name, text):
        path = os.path.join(self.lab.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def doctor(self, config, seconds="3.5"):
        r = self.lab.sh("b", [VIPPROXY, "doctor", "--config", config, "--advert-seconds", seconds,
                              "--etcd", "127.0.0.1:9"], check=False, timeout=60)
        print(r.stdout, r.stderr)
        return r

    def test_1_hears_keepalived(self):
        if not os.path.exists(KEEPALIVED):
            self.skipTest("keepalived is not installed")
        d = os.path.join(self.lab.dir, "keepalived-a")
        os.makedirs(d, exist_ok=True)
        conf = self.write("keepalived-a/keepalived.conf",
                          "global_defs {\n  router_id a\n}\nvrrp_instance VI_1 {\n  state MASTER\n"
                          "  interface eth0\n  virtual_router_id 51\n  priority 100\n  advert_int 1\n"
                          f"  authentication {{\n    auth_type PASS\n    auth_pass {PASSWORD}\n  }}\n"
                          f"  virtual_ipaddress {{\n    {self.vip}\n  }}\n}}\n")
        pidf, vrrpf = os.path.join(d, "keepalived.pid"), os.path.join(d, "vrrp.pid")
        self.peer = self.lab.spawn("keepalived-a", "a", [KEEPALIVED, "-n", "-l", "-G", "-D", "-P", "-f", conf,
                                                         "-p", pidf, "-r", vrrpf])

        def child():
            with open(vrrpf) as f:
                return int(f.read().strip())
        self.lab.extra_pids.append((wait_until(child, 10, "keepalived VRRP child"), "keepalived"))
        wait_until(lambda: self.lab.has_address("a", self.vip), 10, "keepalived MASTER on a")
        r = self.doctor(self.write("b.yaml", vrrp_yaml("b", self.vip)))
        self.assertRegex(r.stdout, r"(?m)^OK   VRRP adverts VI_1 \(vrid 51\): heard " +
                         re.escape(f"{self.lab.net}.151") + r" \(v2, priority 100\)")
        self.assertRegex(r.stdout, r"(?m)^OK   interface eth0: exists and is up")
        self.assertRegex(r.stdout, r"(?m)^OK   capabilities: .* has CAP_NET_ADMIN \(.*\), CAP_NET_RAW \(")
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_2_hears_vipproxy_and_other_vrids(self):
        a = self.write("a.yaml", vrrp_yaml("a", self.vip, priority=120))
        self.peer = self.lab.spawn("vipproxy-a", "a", [VIPPROXY, "--config", a])
        wait_until(lambda: self.lab.has_address("a", self.vip), 10, "vipproxy MASTER on a")
        r = self.doctor(self.write("b.yaml", vrrp_yaml("b", self.vip)))
        self.assertRegex(r.stdout, r"(?m)^OK   VRRP adverts VI_1 \(vrid 51\): heard .*\.151 \(v2, priority 120\)")
        r = self.doctor(self.write("b-other.yaml", vrrp_yaml("b", self.vip, vrid=77)))
        self.assertRegex(r.stdout, r"(?m)^WARN VRRP adverts VI_1 \(vrid 77\): no peer heard in 3\.5 s")
        self.assertIn(f"other routers heard: {self.lab.net}.151/vrid 51", r.stdout)

    def test_3_missing_interface(self):
        r = self.doctor(self.write("b-noif.yaml", vrrp_yaml("b", self.vip, interface="nosuch0")), seconds="0.5")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertRegex(r.stdout, r"(?m)^FAIL interface nosuch0: does not exist")


if __name__ == "__main__":
    testmain.main()
