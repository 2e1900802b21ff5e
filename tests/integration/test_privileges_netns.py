"""Capabilities after start (daemon/privileges): the daemon, started as root,
keeps only what it still needs once its sockets are open, in every thread,
and still works with what it kept.

  (a) a proxy on loopback ports >= 1024: nothing at all is kept, the
      bounding set included, and the proxy still forwards;
  (b) a proxy on port 443 (inside a namespace): only cap_net_bind_service;
  (c) a VRRP instance inside a namespace: cap_net_admin + cap_net_raw; the
      instance becomes MASTER and installs the VIP, loses it on FAULT (a
      track script fails) and installs it again, all through netlink after
      the drop; the script, run as root (no `user:`), holds no more than the
      daemon kept; SIGTERM removes the VIP;
  (d) a track script with `user: nobody`: cap_setuid, cap_setgid and
      cap_kill are kept too, and the script runs as nobody with nothing.

What is asserted is the kernel's account: /proc/PID/task/*/status.

    VIPPROXY_BIN=build/vipproxy /usr/bin/python3 tests/integration/test_privileges_netns.py
"""
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402
import netns  # noqa: E402
from netns import log, wait_until  # noqa: E402
import testmain  # noqa: E402

VIPPROXY = L.VIPPROXY
PY = L.PY

CAP_KILL, CAP_SETGID, CAP_SETUID = 5, 6, 7
CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW = 10, 12, 13


def mask(*caps):
    m = 0
    for c in caps:
        m |= 1 << c
    return m


def caps_of(pid):
    """{tid: {"CapInh": int, ...}} for every thread of `pid`."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                text = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        out[int(tid)] = {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s*([0-9a-f]+)$", text, re.M)}
    return out


class PrivilegesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(VIPPROXY):
            raise RuntimeError(f"vipproxy binary not found at {VIPPROXY} (set VIPPROXY_BIN)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("the privilege tests start the daemon as root: run them as root")
        cls.loop = L.Lab("vipproxy-priv")
        # 10.88.74.0/24: no other test uses it (grep tests/ for 10.88.).
        cls.ns = netns.Lab(third_octet=74)
        cls.ns.add_node("a", 151)
        cls.vip = f"{cls.ns.net}.160"
        log(f"namespaces {cls.ns.namespaces}, VIP {cls.vip}, logs in {cls.loop.dir} and {cls.ns.dir}")

    @classmethod
    def tearDownClass(cls):
        cls.ns.close()
        cls.loop.close()

    # ---- helpers ----
    def write(self, name, text, directory=None):
        path = os.path.join(directory or self.loop.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_threads_hold(self, pid, want, name):
        """Every thread: effective = permitted = bounding = want, nothing inheritable or ambient."""
        threads = caps_of(pid)
        self.assertGreaterEqual(len(threads), 2, f"{name}: expected worker threads besides the control thread")
        for tid, c in threads.items():
            got = {k: c[k] for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb")}
            self.assertEqual(got, {"CapEff": want, "CapPrm": want, "CapBnd": want, "CapInh": 0, "CapAmb": 0},
                             f"{name}: thread {tid} holds {({k: hex(v) for k, v in got.items()})}, want {want:#x}")

    def log_of(self, lab, name):
        with open(os.path.join(lab.dir, name + ".log"), errors="replace") as f:
            return f.read()

    def ns_status(self, port):
        code = ("import urllib.request,sys;sys.stdout.write(urllib.request.urlopen("
                f"'http://127.0.0.1:{port}/status',timeout=2).read().decode())")
        r = self.ns.sh("a", [PY, "-c", code], check=False, timeout=10)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout else None

    def start_in_ns(self, name, yaml, admin_port):
        path = self.write(name + ".yaml", yaml, self.ns.dir)
        p = self.ns.spawn(name, "a", [VIPPROXY, "--config", path])
        wait_until(lambda: p.poll() is not None or self.ns_status(admin_port), 15, f"{name} answering /status")
        self.assertIsNone(p.poll(), f"{name} exited:\n{self.ns.logtail(name)}")
        # /status answers from the control loop, which starts right after the drop.
        self.assertIn("privileges: keeping", self.log_of(self.ns, name))
        return p

    def vip_present(self):
        return self.ns.has_address("a", self.vip)

    def vrrp_state(self, port):
        st = self.ns_status(port)
        return st["vrrp"][0]["state"] if st else None

    # ---- (a) ----
    def test_a_loopback_proxy_keeps_nothing(self):
        backend = L.echo_backend(self.loop)
        listen, admin = L.free_port(), L.free_port()
        path = self.write("a.yaml", f"""node: priv-a
threads: 2
admin: {{listen: '127.0.0.1:{admin}'}}
proxies:
  - name: postgres
    listen: 127.0.0.1:{listen}
    check: {{type: tcp, interval: 200ms, rise: 1}}
    backends:
      - {{name: echo, address: 127.0.0.1:{backend}}}
""")
        p = self.loop.spawn("vipproxy-a", [VIPPROXY, "--config", path])

        def ready():
            if p.poll() is not None:
                raise AssertionError(f"vipproxy exited:\n{self.loop.logtail('vipproxy-a')}")
            return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{admin}/status", timeout=2).read())
        wait_until(ready, 15, "vipproxy /status")
        self.assertIn("privileges: keeping no capabilities", self.log_of(self.loop, "vipproxy-a"))
        self.assert_threads_hold(p.pid, 0, "(a) loopback proxy")

        # The workers, now without any capability, still forward.
        def echo():
            with socket.create_connection(("127.0.0.1", listen), timeout=2) as s:
                s.sendall(b"after the drop")
                return s.recv(64) == b"after the drop"
        wait_until(echo, 15, "a session through the proxy after the drop")
        self.loop.stop_proc(p)
        self.assertEqual(p.returncode, 0, self.loop.logtail("vipproxy-a"))

    # ---- (b) ----
    def test_b_privileged_port_keeps_bind_service(self):
        admin = 18471
        p = self.start_in_ns("vipproxy-b", f"""node: priv-b
threads: 2
admin: {{listen: '127.0.0.1:{admin}'}}
proxies:
  - name: postgres
    listen: 127.0.0.1:443
    check: {{type: tcp}}
    backends:
      - {{name: nothing, address: 127.0.0.1:5432}}
""", admin)
        self.assert_threads_hold(p.pid, mask(CAP_NET_BIND_SERVICE), "(b) port 443")
        self.assertIn("cap_net_bind_service (proxy postgres listens on port 443)", self.log_of(self.ns, "vipproxy-b"))
        self.ns.stop(p)
        self.assertEqual(p.returncode, 0)

    # ---- (c) ----
    def vrrp_yaml(self, node, admin, scripts):
        return f"""node: {node}
threads: 2
admin: {{listen: '127.0.0.1:{admin}'}}
proxies:
  - name: postgres
    listen: 0.0.0.0:5433
    check: {{type: tcp}}
    backends:
      - {{name: nothing, address: 127.0.0.1:5432}}
vrrp:
  - name: VI_1
    interface: eth0
    virtual_router_id: 74
    priority: 150
    version: 3
    advert_int: 100ms
    virtual_ipaddresses: [{self.vip}/24]
    track:
      scripts:
{scripts}"""

    def test_c_vrrp_keeps_net_admin_and_net_raw(self):
        admin = 18472
        fail_flag = os.path.join(self.ns.dir, "c.fail")
        script_caps = os.path.join(self.ns.dir, "c.script-status")
        # Fails while the flag file exists; records the capabilities it ran with.
        script = self.write("c-check.sh", f"#!/bin/sh\ngrep ^Cap /proc/self/status > {script_caps}.tmp\n"
                                          f"mv {script_caps}.tmp {script_caps}\n"
                                          f"test ! -e {fail_flag}\n", self.ns.dir)
        os.chmod(script, 0o755)
        p = self.start_in_ns("vipproxy-c", self.vrrp_yaml("priv-c", admin, f"""        - name: chk
          command: {script}
          interval: 100ms
          timeout: 2s
"""), admin)
        want = mask(CAP_NET_ADMIN, CAP_NET_RAW)
        self.assert_threads_hold(p.pid, want, "(c) VRRP")
        self.assertNotRegex(self.log_of(self.ns, "vipproxy-c"), r"privileges: keeping [^\n]*cap_setuid")

        # MASTER and the VIP through netlink, after the drop.
        wait_until(lambda: self.vrrp_state(admin) == "MASTER", 10, "(c) MASTER")
        wait_until(self.vip_present, 5, "(c) VIP installed")
        log("(c) MASTER with the VIP after the drop")

        # A script run as root (no `user:`) gets no more than the daemon kept:
        # its capabilities come from the bounding set, which shrank too.
        def script_caps_read():
            with open(script_caps) as f:
                return {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s*([0-9a-f]+)$", f.read(), re.M)}
        c = wait_until(lambda: os.path.exists(script_caps) and script_caps_read(), 5, "(c) script ran")
        self.assertEqual((c["CapEff"], c["CapPrm"], c["CapBnd"]), (want, want, want),
                         f"root track script holds {({k: hex(v) for k, v in c.items()})}")

        # Runtime removal and re-add (RTM_DELADDR / RTM_NEWADDR) still work.
        open(fail_flag, "w").close()
        wait_until(lambda: self.vrrp_state(admin) == "FAULT", 5, "(c) FAULT while the script fails")
        wait_until(lambda: not self.vip_present(), 5, "(c) VIP removed in FAULT")
        os.unlink(fail_flag)
        wait_until(lambda: self.vrrp_state(admin) == "MASTER", 10, "(c) MASTER again")
        wait_until(self.vip_present, 5, "(c) VIP installed again")
        log("(c) FAULT removed the VIP, MASTER added it again")

        # SIGTERM: priority 0 and the VIP removed before exiting.
        self.ns.stop(p)
        self.assertEqual(p.returncode, 0, self.ns.logtail("vipproxy-c"))
        self.assertFalse(self.vip_present(), "(c) VIP left behind after SIGTERM")

    # ---- (d) ----
    def test_d_script_user_keeps_setuid_setgid_kill(self):
        admin = 18473
        nobody = pwd.getpwnam("nobody")
        out_dir = os.path.join(self.ns.dir, "d-out")
        os.makedirs(out_dir)
        os.chmod(out_dir, 0o777)
        out = os.path.join(out_dir, "status")
        script = self.write("d-check.sh", f"#!/bin/sh\ngrep -E '^(Uid|Cap)' /proc/self/status > {out}.tmp\n"
                                          f"mv {out}.tmp {out}\n", self.ns.dir)
        os.chmod(script, 0o755)
        p = self.start_in_ns("vipproxy-d", self.vrrp_yaml("priv-d", admin, f"""        - name: chk
          command: {script}
          interval: 200ms
          user: nobody
"""), admin)
        self.assert_threads_hold(p.pid, mask(CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_NET_ADMIN, CAP_NET_RAW),
                                 "(d) VRRP with a script user")
        wait_until(lambda: self.vrrp_state(admin) == "MASTER", 10, "(d) MASTER (the script passes)")
        wait_until(self.vip_present, 5, "(d) VIP installed")

        def read():
            with open(out) as f:
                return f.read()
        text = wait_until(lambda: os.path.exists(out) and read(), 5, "(d) script ran")
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", text, re.M).groups()
        self.assertEqual(uids, (str(nobody.pw_uid),) * 3, text)
        for k in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            self.assertEqual(int(re.search(rf"^{k}:\s*([0-9a-f]+)", text, re.M).group(1), 16), 0,
                             f"script as nobody holds {k}:\n{text}")
        self.ns.stop(p)
        self.assertEqual(p.returncode, 0, self.ns.logtail("vipproxy-d"))
        self.assertFalse(self.vip_present(), "(d) VIP left behind after SIGTERM")


if __name__ == "__main__":
    testmain.main()
