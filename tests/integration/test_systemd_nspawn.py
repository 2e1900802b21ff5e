#!/usr/bin/python3
# Over 500 lines: one booted container (slow to build) for every systemd case, with its helpers.
"""The Debian package under a real systemd: a Debian 12 tree booted with
`systemd-nspawn --boot` inside a lab network namespace, the .deb installed
with dpkg, and the unit (packaging/vipproxy.service) driven with systemctl as
an operator would:

  1. `systemctl start` is `activating (start)` while the daemon runs but its
     first check has not answered (the check stand-in holds the reply), and
     `active (running)` only after READY (STATUS= text, "ready:" logged);
  2. the daemon runs as the vipproxy user with only CAP_NET_ADMIN and
     CAP_NET_RAW (VRRP, ports >= 1024), no ambient set, the unit's bounding
     set, no_new_privs, in every thread (/proc/PID/task/*/status); with
     vrrp_rt_priority the control thread alone is SCHED_RR; a track script
     sees other users' processes (`pidof systemd-journald` passes);
  3. it holds the VIP on the lab interface (keepalived as BACKUP on a second
     lab node) and a client there reaches a backend through VIP:5433;
  3b. a notify hook writes its state file (keepalived users' notify scripts
     do) in /var/lib/vipproxy (StateDirectory=) and /run/vipproxy, and
     nowhere else under ProtectSystem=strict; the documented drop-in
     (`systemctl edit vipproxy`: ReadWritePaths=) lets it write another
     directory;
  4. `systemctl reload` applies a changed file (a new proxy listens, same
     PID); a file that does not load makes `systemctl reload` itself fail
     (the unit's ExecReload checks it first) with the file, line and key in
     the journal; a file that loads but cannot be applied is refused by the
     daemon; the running configuration is kept in both;
  5. `journalctl -u vipproxy` stores warnings as warning (4), errors as err
     (3), info as info (6), with the "<N>" prefixes consumed;
  6. a SIGSTOPped daemon misses its watchdog pings: systemd aborts it and
     restarts it (NRestarts, new PID, active again);
  7. `systemctl stop` sends priority 0 and removes the VIP before the unit is
     inactive; the keepalived peer takes it over; a track script running at
     that moment gets no SIGTERM from systemd and runs to its end;
  7b. SIGKILL of the master while its file no longer loads: the restarts fail,
     and the unit's ExecStopPost (`vipproxy release-vips`) removes the VIP
     the killed daemon left;
  8. `dpkg -i` of a newer package over the running service: not restarted
     while policy-rc.d answers 101, nor while the file on disk does not load
     (the old daemon keeps running, dpkg's output says why), restarted on the
     new binary otherwise; a removal that fails after the prerm stopped the
     service (dpkg: `postinst abort-remove`) starts it again, one that was
     stopped stays so; `dpkg -r` stops it, `dpkg -P` removes /etc/vipproxy
     and /var/lib/vipproxy.

Network safety: the container has no network of its own. It is started with
--network-namespace-path into a namespace made by netns.Lab (10.88.76.0/24,
a bridge in another namespace, nothing in the root namespace), so its eth0 is
a lab interface. The tree's packages (systemd, dbus, iproute2 and the .deb's
Depends) are put in when the tree is made with debootstrap from Debian's
archive, on the host side, once: the booted container needs no outside
network. The tree is cached under the build directory (BUILD/nspawn/,
keyed by its package list) and never changed by a run: the container boots
with --volatile=overlay (every write goes to a tmpfs, gone at power-off).

Every process started here (the container, the check stand-in, the echo
backend, keepalived) is stopped by the PID recorded at start; the container
first with its own `systemctl poweroff`.

Needs root, debootstrap, systemd-nspawn (systemd-container), cpack, dpkg-deb
(scripts/deps), and network to Debian's archive the first time only.

    VIPPROXY_BIN=build/vipproxy /usr/bin/python3 tests/integration/test_systemd_nspawn.py
"""
import atexit
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debtree  # noqa: E402
import netns  # noqa: E402
from netns import hold, log, wait_until  # noqa: E402
import testmain  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BIN = os.environ.get("VIPPROXY_BIN", os.path.join(ROOT, "build", "vipproxy"))
BUILD = os.path.dirname(os.path.abspath(BIN))
PY = "/usr/bin/python3"
KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"

THIRD_OCTET = 76  # 10.88.76.0/24: no other test uses it (grep tests/ scripts/ for 10.88.)
VRID = 76
CONF = "/etc/vipproxy/vipproxy.yaml"
# Inside the container, from `nsenter`: not the host's environment.
CONTAINER_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                 "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}

CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_NICE = 10, 12, 13, 23
# keepalived's notify arguments follow the command: INSTANCE VI_1 MASTER 150.
STATE_HOOK = "/usr/local/bin/vipproxy-state-hook"
STATE_DIRS = ("/var/lib/vipproxy", "/run/vipproxy", "/srv/flags")
STATE_HOOK_TEXT = ("#!/bin/sh\n"
                   f"for d in {' '.join(STATE_DIRS)}; do\n"
                   "  if echo \"$3\" 2>/dev/null > \"$d/state\"; then echo \"state-hook wrote $d $3\"\n"
                   "  else echo \"state-hook could not write $d $3\"; fi\n"
                   "done\n")
DROP_IN = "/etc/systemd/system/vipproxy.service.d/flags.conf"


def sh(argv, check=True, timeout=120, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def caps(*bits):
    m = 0
    for b in bits:
        m |= 1 << b
    return m


class Container:
    """One `systemd-nspawn --boot` of `tree` in the network namespace `netns_name`."""

    def __init__(self, tree, netns_name, bind_ro, logdir):
        self.proc = None
        self.init_pid = None
        self.logpath = os.path.join(logdir, "nspawn.log")
        atexit.register(self.close)
        argv = ["systemd-nspawn", "--quiet", "-D", tree, "--boot",
                # No machined, no system bus on the host: stay in our own cgroup.
                "--register=no", "--keep-unit",
                "--settings=no", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
                # Writes go to a tmpfs: the cached tree stays as debootstrap made it.
                "--volatile=overlay",
                f"--network-namespace-path=/run/netns/{netns_name}",
                # VIPs through netlink; the namespace is the lab's, not the host's.
                "--capability=CAP_NET_ADMIN",
                f"--bind-ro={bind_ro}:/mnt/vipproxy",
                "--console=pipe"]
        with open(self.logpath, "ab") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        log(f"container: systemd-nspawn PID {self.proc.pid}, log {self.logpath}")
        self.init_pid = wait_until(self._find_init, 30, "the container's init (PID 1 in its namespace)")
        state = wait_until(self._booted, 120, "the container's systemd to finish booting", interval=0.2)
        log(f"container: init PID {self.init_pid} (host), system {state}")
        if state != "running":
            log("container: failed units:\n" + self.run(["systemctl", "--failed", "--no-legend"], check=False).stdout)

    def _find_init(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self.proc.returncode}:\n{self.logtail()}")
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                children = [int(p) for p in f.read().split()]
        except OSError:
            return None
        for pid in children:
            try:
                with open(f"/proc/{pid}/status") as f:
                    nspid = re.search(r"^NSpid:\s+(.*)$", f.read(), re.M).group(1).split()
            except OSError:
                continue
            if nspid[-1] == "1":
                return pid
        return None

    def _booted(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self.proc.returncode}:\n{self.logtail()}")
        r = self.run(["systemctl", "is-system-running"], check=False, timeout=10)
        state = r.stdout.strip()
        return state if state in ("running", "degraded") else None

    def run(self, argv, check=True, timeout=60, input=None):
        """`argv` inside the container (all its namespaces), as root."""
        return sh(["nsenter", "-t", str(self.init_pid), "-a", "--"] + argv, check=check, timeout=timeout,
                  env=CONTAINER_ENV, input=input)

    def logtail(self, n=40):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def close(self):
        """Power-off from inside; then SIGTERM to nspawn (which powers the
        container off too); last, SIGKILL to the init we recorded (ends its
        whole PID namespace) and to nspawn."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.init_pid:
            self.run(["systemctl", "poweroff"], check=False, timeout=30)
            try:
                self.proc.wait(60)
                return
            except subprocess.TimeoutExpired:
                log("container: still up 60 s after poweroff; SIGTERM to systemd-nspawn")
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
            return
        except subprocess.TimeoutExpired:
            pass
        if self.init_pid and self._find_init() == self.init_pid:
            os.kill(self.init_pid, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()


class SystemdNspawnTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # What this machine lacks is a skip with the reason (testmain: exit
        # 77, shown as skipped; CI, as root with VIPPROXY_NO_SKIP=1, fails).
        if os.geteuid() != 0:
            raise unittest.SkipTest("the systemd test needs root (debootstrap, systemd-nspawn, ip netns)")
        for tool in ("debootstrap", "systemd-nspawn", "nsenter", "cpack", "dpkg-deb", "dpkg-shlibdeps", "ss"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"the systemd test needs {tool} (scripts/deps installs it)")
        if not os.path.exists(os.path.join(BUILD, "CPackConfig.cmake")):
            raise RuntimeError(f"{BUILD} has no CPackConfig.cmake: not a configured build dir")
        # SIGTERM or SIGHUP (ctest, scripts/test, a person) unwinds the whole
        # run, so the atexit clean-ups below run at once. A handler raising
        # SystemExit did not: unittest records that as the running case's
        # error and goes on with the next cases (tests/integration/
        # test_suite_rules.py, test_3).
        netns.labkit.stop_on_signals()
        cls.tmp = tempfile.mkdtemp(prefix="vipproxy-nspawn-")
        os.chmod(cls.tmp, 0o755)
        atexit.register(shutil.rmtree, cls.tmp, True)
        debdir = os.path.join(cls.tmp, "deb")
        os.makedirs(debdir)
        r = sh(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", debdir],
               cwd=BUILD, timeout=900)
        debs = glob.glob(os.path.join(debdir, "*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"cpack made {debs}:\n{r.stdout}\n{r.stderr}")
        shutil.rmtree(os.path.join(debdir, "_CPack_Packages"), ignore_errors=True)
        cls.deb = os.path.basename(debs[0])
        # The same package with a higher version: what an upgrade installs (test_8).
        cls.newer_deb = debtree.newer_package(debs[0], debdir, cls.tmp)
        tree = debtree.tree_for(debs[0], BUILD)

        # The lab: node a is the container's network namespace, node b runs
        # keepalived as the VRRP peer and the client.
        cls.lab = netns.Lab(third_octet=THIRD_OCTET)
        cls.lab.add_node("a", 151)
        cls.lab.add_node("b", 152)
        cls.vip = f"{cls.lab.net}.160"
        # In node a's namespace, so on the container's 127.0.0.1: Patroni's
        # REST API stand-in (the check) and a backend.
        cls.role = os.path.join(cls.lab.dir, "role")
        cls.set_role("hold")
        cls.lab.standin("a", 8008, cls.role, os.path.join(cls.lab.dir, "standin.json"), "standin")
        cls.lab.echo_backend("a", 5432)
        wait_until(lambda: cls.listening("a", 8008) and cls.listening("a", 5432), 10, "stand-in and echo backend")
        cls.start_keepalived()
        # Its close() is registered with atexit after the lab's: the
        # container is down before its namespace goes.
        cls.box = Container(tree, cls.lab.ns("a"), debdir, cls.lab.dir)

        r = cls.box.run(["dpkg", "-i", f"/mnt/vipproxy/{cls.deb}"], check=False, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"dpkg -i in the container failed:\n{r.stdout}\n{r.stderr}")
        # postinst saw /run/systemd/system: it reloaded systemd and said what to do next.
        assert "systemctl enable --now vipproxy" in r.stdout, r.stdout
        # test_3b: a notify hook as keepalived users write them (the state in
        # a file), and a directory of the operator's own outside the unit's.
        cls.box.run(["sh", "-c", f"cat > {STATE_HOOK} && chmod 755 {STATE_HOOK}"], input=STATE_HOOK_TEXT)
        cls.box.run(["install", "-d", "-o", "vipproxy", "-g", "vipproxy", "/srv/flags"])
        cls.write_conf(cls.conf())

    @classmethod
    def tearDownClass(cls):
        box = getattr(cls, "box", None)
        if box and box.proc and box.proc.poll() is None:
            r = box.run(["journalctl", "-u", "vipproxy", "--no-pager", "-n", "60", "-o", "short-monotonic"],
                        check=False)
            log("journalctl -u vipproxy (last 60):\n" + r.stdout)
            box.close()
        if getattr(cls, "lab", None):
            cls.lab.close()

    # ---- helpers ----
    @classmethod
    def set_role(cls, role):
        tmp = cls.role + ".tmp"
        with open(tmp, "w") as f:
            f.write(role + "\n")
        os.replace(tmp, cls.role)

    @classmethod
    def listening(cls, short, port):
        out = cls.lab.sh(short, ["ss", "-Htln", f"sport = :{port}"]).stdout
        return bool(out.strip())

    @classmethod
    def start_keepalived(cls):
        d = os.path.join(cls.lab.dir, "keepalived")
        os.makedirs(d)
        conf = os.path.join(d, "keepalived.conf")
        with open(conf, "w") as f:
            f.write("global_defs {\n  router_id b\n}\n"
                    "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  version 3\n"
                    f"  virtual_router_id {VRID}\n  priority 100\n  advert_int 1\n"
                    f"  virtual_ipaddress {{\n    {cls.vip}/24\n  }}\n}}\n")
        pidf, vrrpf = os.path.join(d, "keepalived.pid"), os.path.join(d, "vrrp.pid")
        cls.lab.spawn("keepalived", "b", [KEEPALIVED, "-n", "-l", "-G", "-D", "-P", "-f", conf, "-p", pidf, "-r", vrrpf])

        def child():
            with open(vrrpf) as f:
                return int(f.read().strip())
        cls.lab.extra_pids.append((wait_until(child, 10, "keepalived's VRRP child"), "keepalived"))

    @classmethod
    def conf(cls, extra_proxy="", threads=2, broken=False, unusable=False):
        text = (f"node: catalog01\nthreads: {threads}\nlog_level: info\nvrrp_rt_priority: 10\n"
                "admin:\n  listen: 127.0.0.1:8405\n"
                "proxies:\n"
                "  - name: postgres\n    listen: 0.0.0.0:5433\n"
                # A long check timeout: READY must wait for the first answer,
                # not fall back on the timeout (2 x timeout + 0.5 s).
                "    check: {type: http, port: 8008, method: OPTIONS, path: /primary, expect_status: 200,\n"
                "            interval: 1s, timeout: 30s, rise: 1, fall: 3}\n"
                "    backends:\n      - {name: catalog01, address: 127.0.0.1:5432}\n")
        if extra_proxy:
            text += (f"  - name: {extra_proxy}\n    listen: 0.0.0.0:5434\n    check: {{type: tcp}}\n"
                     "    backends:\n      - {name: catalog01, address: 127.0.0.1:5432}\n")
        if unusable:
            # Loads (--check-config passes) but cannot listen: no such
            # address in the container (10.88.x is the lab; this is not).
            text += ("  - name: nowhere\n    listen: 10.99.99.99:5435\n    check: {type: tcp}\n"
                     "    backends:\n      - {name: catalog01, address: 127.0.0.1:5432}\n")
        text += ("vrrp:\n  - name: VI_1\n    interface: eth0\n    state: backup\n"
                 f"    virtual_router_id: {VRID}\n    priority: 150\n    version: 3\n    advert_int: 1s\n"
                 f"    virtual_ipaddresses: [{cls.vip}/24]\n"
                 # Busy 3 s of every 4 (test_7 stops the unit while it runs):
                 # says whether anything but the daemon signalled it.
                 "    track:\n      scripts:\n"
                 "        - name: slow\n          interval: 1s\n          timeout: 10s\n"
                 "          command: \"echo slow-script-started; echo slow-script-nofile $(ulimit -Sn); trap 'echo slow-script-got-SIGTERM' TERM; "
                 "sleep 3 & wait; echo slow-script-done\"\n"
                 # keepalived's usual check that a process runs (the guide's
                 # check_haproxy.sh: `pidof haproxy`), here of a root process.
                 "        - name: journald\n          interval: 1s\n          weight: -10\n"
                 "          command: pidof systemd-journald >/dev/null\n"
                 # A stop hook that takes 2 s (test_7): it must run to its end.
                 "    notify:\n"
                 f"      any: {STATE_HOOK}\n"
                 "      stop: \"echo stop-hook-started; trap 'echo stop-hook-got-SIGTERM' TERM; sleep 2 & wait; "
                 "echo stop-hook-done\"\n")
        if broken:
            text += "    no_such_key: 1\n"
        return text

    @classmethod
    def write_conf(cls, text):
        # `cat >` keeps the file the package made: root:vipproxy 0640.
        cls.box.run(["sh", "-c", f"cat > {CONF}"], input=text)

    def show(self, *props):
        out = self.box.run(["systemctl", "show", "vipproxy", "-p", ",".join(props)]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def state(self):
        s = self.show("ActiveState", "SubState")
        return s["ActiveState"], s["SubState"]

    def main_pid(self):
        return int(self.show("MainPID")["MainPID"])

    def journal(self, *args):
        r = self.box.run(["journalctl", "-u", "vipproxy", "--no-pager", "-o", "json"] + list(args))
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def messages(self):
        return [e.get("MESSAGE", "") for e in self.journal() if isinstance(e.get("MESSAGE"), str)]

    def applied(self):
        """How many reloads the journal shows as applied."""
        return sum(1 for m in self.messages() if re.match(rf"^\[info\] SIGHUP: {CONF} applied \(", m))

    def has_vip(self, short):
        return self.lab.has_address(short, self.vip)

    def standin_stats(self):
        with open(os.path.join(self.lab.dir, "standin.json")) as f:
            return json.load(f)

    def client_through_vip(self, port=5433):
        """A client on node b: VIP:port, one line echoed back by the backend on node a."""
        code = ("import socket,sys\n"
                f"s=socket.create_connection(('{self.vip}',{port}),timeout=5)\n"
                "s.sendall(b'hello through the VIP\\n');d=b''\n"
                "while len(d)<22:\n  c=s.recv(100)\n  if not c: break\n  d+=c\n"
                "sys.stdout.write(d.decode())\n")
        return self.lab.sh("b", [PY, "-c", code], timeout=20).stdout

    # ---- the operator's steps, in order ----
    def test_1_start_is_active_only_after_ready(self):
        self.assertEqual(self.box.run(["systemctl", "is-enabled", "vipproxy"], check=False).stdout.strip(),
                         "disabled", "a fresh install must not enable the service")
        self.box.run(["systemctl", "start", "--no-block", "vipproxy"])
        # The daemon is up (its listener is bound, its check is waiting on
        # the stand-in) but has not sent READY: the unit is still starting.
        wait_until(lambda: self.listening("a", 5433), 30, "vipproxy listening on 5433 in the container")
        wait_until(lambda: self.standin_stats().get("held", 0) >= 1, 10, "the first check to reach the stand-in")
        self.assertGreater(self.main_pid(), 0)
        self.assertEqual(self.state(), ("activating", "start"))
        hold(lambda: self.state() == ("activating", "start"), 1.5, "activating while the first check is unanswered",
             interval=0.1)
        self.assertFalse(any(m.startswith("[info] ready:") for m in self.messages()))
        # The check answers: READY follows, and only then active (running).
        self.set_role("primary")
        wait_until(lambda: self.state() == ("active", "running"), 20, "active (running) after READY")
        status = self.box.run(["systemctl", "status", "vipproxy", "--no-pager"], check=False).stdout
        self.assertIn("active (running)", status)
        self.assertEqual(self.show("StatusText")["StatusText"], "1 proxies, 1/1 backends eligible")
        msgs = self.messages()
        self.assertTrue(any(m == "[info] ready: 1 proxies, 1/1 backends eligible" for m in msgs), msgs)
        # ExecStartPre validated the file first, as the vipproxy user.
        self.assertTrue(any(m == f"{CONF}: OK (1 proxies, 1 vrrp instances)" for m in msgs), msgs)

    def test_2_user_and_capabilities(self):
        pid = self.main_pid()
        uid = int(self.box.run(["id", "-u", "vipproxy"]).stdout)
        gid = int(self.box.run(["id", "-g", "vipproxy"]).stdout)
        tids = self.box.run(["ls", f"/proc/{pid}/task"]).stdout.split()
        self.assertGreaterEqual(len(tids), 3, "control thread + 2 workers")
        # VRRP: netlink for the VIP and raw sockets; ports >= 1024: no bind
        # capability. The unit's bounding set stays (an unprivileged daemon
        # cannot shrink it), the ambient set is cleared for its children.
        want = {"CapEff": caps(CAP_NET_ADMIN, CAP_NET_RAW), "CapPrm": caps(CAP_NET_ADMIN, CAP_NET_RAW),
                "CapInh": 0, "CapAmb": 0,
                "CapBnd": caps(CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE, CAP_SYS_NICE)}
        for tid in tids:
            text = self.box.run(["cat", f"/proc/{pid}/task/{tid}/status"]).stdout
            with self.subTest(tid=tid):
                self.assertEqual([int(x) for x in re.search(r"^Uid:\s+(.*)$", text, re.M).group(1).split()],
                                 [uid] * 4)
                self.assertEqual([int(x) for x in re.search(r"^Gid:\s+(.*)$", text, re.M).group(1).split()],
                                 [gid] * 4)
                got = {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s*([0-9a-f]+)$", text, re.M)}
                self.assertEqual(got, want)
                self.assertRegex(text, r"(?m)^NoNewPrivs:\s+1$")
        self.assertIn("[info] privileges: keeping cap_net_admin", "\n".join(self.messages()))
        # vrrp_rt_priority: 10 works under the unit (CAP_SYS_NICE at start only,
        # dropped with the rest above): the control thread (the main thread)
        # alone is SCHED_RR, and nothing it starts could become realtime.
        policies = {int(tid): int(re.search(r"(?m)^policy\s*:\s*(\d+)$",
                                            self.box.run(["cat", f"/proc/{pid}/task/{tid}/sched"]).stdout).group(1))
                    for tid in tids}
        self.assertEqual(policies.pop(pid), 2, "the control thread is not SCHED_RR")
        self.assertEqual(set(policies.values()), {0}, policies)
        limits = self.box.run(["cat", f"/proc/{pid}/limits"]).stdout
        self.assertRegex(limits, r"(?m)^Max realtime priority\s+0\s+0\s")
        # LimitNOFILE=1024:1048576 (the hard limit no higher than the
        # container's own): the daemon lifted its soft limit to the hard one,
        # its track script runs with 1024 (systemd.exec(5)).
        soft, hard = re.search(r"(?m)^Max open files\s+(\d+)\s+(\d+)\s", limits).groups()
        self.assertEqual(soft, hard)
        self.assertGreater(int(soft), 1024)
        wait_until(lambda: "slow-script-nofile 1024" in self.messages(), 10, "the track script's soft limit")
        self.assertNotIn(f"slow-script-nofile {soft}", self.messages())
        # A track script sees the processes of other users: `pidof`,
        # `killall -0`, `pgrep` checks work as under keepalived (run as root
        # there). ProtectProc=invisible hid them, so such a script failed for
        # ever, its weight off the priority (weight 0: FAULT, no VIP).
        wait_until(lambda: "[info] vrrp VI_1: track script journald is now OK" in self.messages(), 10,
                   "the track script `pidof systemd-journald` to pass")

    def test_3_vip_held_and_served(self):
        wait_until(lambda: self.has_vip("a") and not self.has_vip("b"), 15, "the VIP on the container's eth0 only")
        self.assertEqual(self.client_through_vip(), "hello through the VIP\n")

    def test_3b_hooks_write_their_state(self):
        """keepalived users' notify scripts write the state to a file. Under
        ProtectSystem=strict only /tmp (the unit's own, PrivateTmp=) and
        /run/vipproxy were writable, so a hook writing /var/lib/... failed
        (Read-only file system) and whatever read the file saw the old state.
        The unit's StateDirectory= makes /var/lib/vipproxy the place for it,
        and a drop-in with ReadWritePaths= (README, "Hooks and scripts under
        the unit") opens a directory of the operator's choice."""
        wait_until(lambda: self.has_vip("a"), 20, "the VIP on the container")

        def wrote(d):
            return f"state-hook wrote {d} MASTER" in self.messages()
        wait_until(lambda: wrote("/var/lib/vipproxy") and wrote("/run/vipproxy"), 10,
                   "the MASTER hook's state files in /var/lib/vipproxy and /run/vipproxy")
        for d in ("/var/lib/vipproxy", "/run/vipproxy"):
            self.assertEqual(self.box.run(["cat", f"{d}/state"]).stdout, "MASTER\n")
        self.assertIn("state-hook could not write /srv/flags MASTER", self.messages())
        self.assertNotEqual(self.box.run(["test", "-e", "/srv/flags/state"], check=False).returncode, 0)
        mode = self.box.run(["stat", "-c", "%U %a", "/var/lib/vipproxy"]).stdout.split()
        self.assertEqual(mode[0], "vipproxy")
        # The drop-in the README shows (what `systemctl edit vipproxy` writes).
        self.box.run(["sh", "-c", f"mkdir -p {os.path.dirname(DROP_IN)} && cat > {DROP_IN}"],
                     input="[Service]\nReadWritePaths=/srv/flags\n")
        try:
            self.box.run(["systemctl", "daemon-reload"])
            self.box.run(["systemctl", "restart", "vipproxy"], timeout=90)
            wait_until(lambda: self.has_vip("a"), 20, "the VIP on the container after the restart")
            wait_until(lambda: self.box.run(["cat", "/srv/flags/state"], check=False).stdout == "MASTER\n", 10,
                       "the MASTER hook's state file in /srv/flags")
        finally:
            self.box.run(["rm", "-f", DROP_IN])
            self.box.run(["systemctl", "daemon-reload"])
            self.box.run(["systemctl", "restart", "vipproxy"], timeout=90, check=False)
        wait_until(lambda: self.state() == ("active", "running"), 30, "active (running) without the drop-in")
        wait_until(lambda: self.has_vip("a") and not self.has_vip("b"), 20, "the VIP back on the container")

    def test_4_reload(self):
        pid, restarts = self.main_pid(), self.show("NRestarts")["NRestarts"]
        # A new proxy, and a restart-only key (a warning).
        applied = self.applied()
        self.write_conf(self.conf(extra_proxy="postgres-ro", threads=3))
        self.box.run(["systemctl", "reload", "vipproxy"])
        wait_until(lambda: self.listening("a", 5434), 15, "the reloaded proxy listening on 5434")
        wait_until(lambda: self.applied() == applied + 1, 10, "the reload logged as applied")
        self.assertEqual(self.main_pid(), pid, "reload must not restart the process")
        self.assertEqual(self.show("NRestarts")["NRestarts"], restarts)
        self.assertEqual(self.client_through_vip(5434), "hello through the VIP\n")
        # A file that does not load: `systemctl reload` fails (ExecReload
        # checks the file first), the error names file, line and key, the
        # daemon is not signalled, the running configuration stays.
        self.write_conf(self.conf(extra_proxy="postgres-ro", threads=3, broken=True))
        refused = self.box.run(["systemctl", "reload", "vipproxy"], check=False)
        self.assertNotEqual(refused.returncode, 0, "systemctl reload must fail for a file that does not load")
        wait_until(lambda: any(f"{CONF}:" in m and "no_such_key: unknown key" in m for m in self.messages()), 10,
                   "the check's error in the journal")
        self.assertFalse(any("reload failed, keeping the running configuration" in m for m in self.messages()),
                         "the daemon must not have been signalled")
        self.assertTrue(self.listening("a", 5434))
        self.assertEqual(self.state(), ("active", "running"))
        self.assertEqual(self.main_pid(), pid)
        # A file that loads but cannot be applied: the daemon refuses it.
        self.write_conf(self.conf(extra_proxy="postgres-ro", threads=3, unusable=True))
        self.box.run(["systemctl", "reload", "vipproxy"])
        wait_until(lambda: any("reload failed, keeping the running configuration" in m and "10.99.99.99:5435" in m
                               for m in self.messages()), 10, "the unusable file refused by the daemon")
        self.assertTrue(self.listening("a", 5434))
        self.assertEqual(self.state(), ("active", "running"))
        self.assertEqual(self.main_pid(), pid)
        # Leave a valid file behind: the watchdog's restart runs ExecStartPre.
        # (`threads` still differs from the running value: applied, 0 changes.)
        applied = self.applied()
        self.write_conf(self.conf(extra_proxy="postgres-ro", threads=3))
        self.box.run(["systemctl", "reload", "vipproxy"])
        wait_until(lambda: self.applied() == applied + 1, 10, "the restored file reloaded")

    def test_5_journal_priorities(self):
        entries = [e for e in self.journal() if isinstance(e.get("MESSAGE"), str)
                   and e.get("SYSLOG_IDENTIFIER") == "vipproxy" and e.get("_PID") != "1"]

        def priorities(text):
            """The PRIORITY of every entry whose text contains `text`."""
            hits = [e for e in entries if text in e["MESSAGE"]]
            self.assertTrue(hits, f"no journal entry contains {text!r}")
            return {e["PRIORITY"] for e in hits}

        # syslog(3) severities: 3 err, 4 warning, 6 info.
        expected = {"SIGHUP: threads changed": ("warning", "4"),
                    "SIGHUP: reload failed, keeping the running configuration": ("error", "3"),
                    "ready: ": ("info", "6"),
                    "starting, node catalog01": ("info", "6")}
        for text, (_, priority) in expected.items():
            self.assertEqual(priorities(text), {priority}, text)
        for text, (level, _) in expected.items():  # the level is in the text too, for syslog files
            for e in entries:
                if text in e["MESSAGE"]:
                    self.assertTrue(e["MESSAGE"].startswith(f"[{level}] "), e["MESSAGE"])
        for e in entries:  # journald consumed every "<N>" prefix
            self.assertNotRegex(e["MESSAGE"], r"^<\d>", e)
        # What an operator filters on: warnings and worse, nothing else.
        text = self.box.run(["journalctl", "-u", "vipproxy", "-p", "warning", "--no-pager", "-o", "cat"]).stdout
        self.assertIn("[warning] SIGHUP: threads changed", text)
        self.assertIn("[error] SIGHUP: reload failed", text)
        self.assertNotIn("[info]", text)

    def test_6_watchdog_restarts_a_stopped_daemon(self):
        pid = self.main_pid()
        restarts = int(self.show("NRestarts")["NRestarts"])
        self.box.run(["kill", "-STOP", str(pid)])
        t0 = time.monotonic()
        # WatchdogSec=10s: systemd sends SIGABRT (and SIGCONT), Restart=on-failure.
        wait_until(lambda: int(self.show("NRestarts")["NRestarts"]) == restarts + 1, 60, "the watchdog's restart",
                   interval=0.2)
        wait_until(lambda: self.state() == ("active", "running"), 30, "active (running) after the restart")
        log(f"watchdog: restarted {time.monotonic() - t0:.1f} s after SIGSTOP (WatchdogSec=10s)")
        self.assertNotEqual(self.main_pid(), pid)
        unit_log = self.box.run(["journalctl", "-u", "vipproxy", "--no-pager", "-o", "cat"]).stdout
        self.assertIn("Watchdog timeout", unit_log)
        wait_until(lambda: self.has_vip("a") and not self.has_vip("b"), 20, "the VIP back on the container")

    def test_7_stop_releases_the_vip(self):
        wait_until(lambda: self.has_vip("a"), 20, "the VIP on the container")
        prio0 = "(VI_1) Backup received priority 0 advertisement"
        before = self.lab.logtail("keepalived", 100000).count(prio0)
        # Stopped while a track script runs (a run has just started: it has
        # 3 s left). The daemon owns its children's end: KillMode=mixed sends
        # SIGTERM to the daemon alone, as keepalived's unit does
        # (KillMode=process), not to every process of the unit at once. The
        # daemon kills the track script's run (nobody reads its result, and a
        # long one would hold the stop) and lets the stop hook run to its end.
        started = sum(1 for m in self.messages() if m == "slow-script-started")
        wait_until(lambda: sum(1 for m in self.messages() if m == "slow-script-started") > started, 10,
                   "a new run of the slow track script")
        self.box.run(["systemctl", "stop", "vipproxy"], timeout=60)
        msgs = self.messages()
        self.assertNotIn("slow-script-got-SIGTERM", msgs)
        last = len(msgs) - 1 - msgs[::-1].index("slow-script-started")
        self.assertNotIn("slow-script-done", msgs[last:], "the track script's run in flight was not killed at stop")
        self.assertIn("stop-hook-started", msgs)
        self.assertNotIn("stop-hook-got-SIGTERM", msgs)
        # (keepalived's arguments follow the hook's last command: "stop-hook-done INSTANCE VI_1 STOP 150")
        self.assertTrue(any(m.startswith("stop-hook-done") for m in msgs), "the stop hook did not run to its end")
        t0 = time.monotonic()
        self.assertEqual(self.state(), ("inactive", "dead"))
        self.assertFalse(self.has_vip("a"), "the VIP must be gone when systemctl stop returns")
        wait_until(lambda: self.has_vip("b"), 10, "keepalived taking the VIP over")
        log(f"stop: keepalived held the VIP {time.monotonic() - t0:.2f} s after systemctl stop returned")
        # Handed over, not abandoned: the peer heard our priority 0 advert
        # (RFC 5798 §6.4.2: a Backup then waits Skew_Time, not Master_Down_Interval).
        self.assertGreater(self.lab.logtail("keepalived", 100000).count(prio0), before, "no priority 0 advert heard")
        self.assertFalse(self.listening("a", 5433))
        self.assertIn("[info] stopped", self.messages())

    def test_7b_unclean_death_leaves_no_vip_behind(self):
        """SIGKILL of a master whose file was meanwhile edited into one that
        does not load: every restart fails at ExecStartPre, so no start
        removes the VIP the killed daemon left on eth0, and the node answered
        ARP for it beside keepalived, the new master, for as long as it
        stayed down. The unit's ExecStopPost (`vipproxy release-vips`, from
        the daemon's record in /run/vipproxy/vips) removes it."""
        self.box.run(["systemctl", "start", "vipproxy"], timeout=60)
        wait_until(lambda: self.has_vip("a") and not self.has_vip("b"), 20, "the VIP on the container")
        self.assertIn(f" {self.vip}/", self.box.run(["cat", "/run/vipproxy/vips"]).stdout)
        self.write_conf(self.conf(broken=True))
        try:
            self.box.run(["systemctl", "kill", "--kill-who=main", "-s", "SIGKILL", "vipproxy"])
            wait_until(lambda: not self.has_vip("a"), 20, "the killed daemon's VIP removed")
            wait_until(lambda: self.has_vip("b"), 10, "keepalived taking the VIP over")
            wait_until(lambda: self.state()[0] in ("failed", "activating"), 20, "the restarts failing")
            unit_log = self.box.run(["journalctl", "-u", "vipproxy", "--no-pager", "-o", "cat"]).stdout
            self.assertIn("release-vips: removed", unit_log)
            self.assertIn("no_such_key: unknown key", unit_log)
        finally:
            self.write_conf(self.conf())
            self.box.run(["systemctl", "stop", "vipproxy"], timeout=60, check=False)
            self.box.run(["systemctl", "reset-failed", "vipproxy"], check=False)
        self.assertEqual(self.state(), ("inactive", "dead"))

    def dpkg(self, *args):
        r = self.box.run(["dpkg"] + list(args), check=False, timeout=300)
        self.assertEqual(r.returncode, 0, f"dpkg {' '.join(args)}:\n{r.stdout}\n{r.stderr}")
        return r.stdout + r.stderr

    def test_8_upgrade_remove_purge(self):
        """dpkg -i of a newer package over a running service, as Debian's
        keepalived package does: restarted on the new binary through
        deb-systemd-invoke (so a policy-rc.d that forbids it is obeyed), and
        only if the new binary loads the file; then dpkg -r stops it and
        dpkg -P removes the configuration."""
        self.box.run(["systemctl", "start", "vipproxy"], timeout=60)
        self.assertEqual(self.state(), ("active", "running"))
        newer = f"/mnt/vipproxy/{self.newer_deb}"
        # A policy-rc.d answering 101 (an image build, an operator holding
        # services during an upgrade): the upgrade does not restart it.
        pid = self.main_pid()
        self.box.run(["sh", "-c", "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; "
                                  "chmod 755 /usr/sbin/policy-rc.d"])
        out = self.dpkg("-i", newer)
        self.box.run(["rm", "/usr/sbin/policy-rc.d"])
        self.assertIn("policy-rc.d returned 101", out)
        self.assertEqual((self.main_pid(), self.state()), (pid, ("active", "running")),
                         "restarted although policy-rc.d forbids it")
        # The file on disk has an error the running daemon never loaded (an
        # edit not yet reloaded): the restart would fail at ExecStartPre and
        # leave the node without proxy and VIP. The old daemon keeps running
        # and dpkg says why.
        self.write_conf(self.conf(broken=True))
        out = self.dpkg("-i", newer)
        self.assertIn("no_such_key: unknown key", out)
        self.assertIn("not restarted", out)
        self.assertEqual((self.main_pid(), self.state()), (pid, ("active", "running")),
                         "an upgrade restarted the service into a file that does not load")
        # With a valid file it is restarted: a new process, READY again.
        self.write_conf(self.conf())
        out = self.dpkg("-i", newer)
        self.assertEqual(self.state(), ("active", "running"), out)
        self.assertNotEqual(self.main_pid(), pid, "the upgrade did not restart the service\n" + out)
        wait_until(lambda: self.has_vip("a"), 20, "the VIP on the container after the restart")
        # A removal that fails once the prerm has stopped the service: dpkg
        # calls `postinst abort-remove` (Debian policy 6.6) and the package
        # stays installed. Driven here as dpkg does (the maintainer scripts
        # in its order): the service runs again, as it did, although it was
        # never enabled. Before, the postinst did nothing: stopped for good.
        prerm, postinst = "/var/lib/dpkg/info/vipproxy.prerm", "/var/lib/dpkg/info/vipproxy.postinst"
        pid = self.main_pid()
        self.box.run([prerm, "remove"], timeout=60)
        self.assertEqual(self.state(), ("inactive", "dead"))
        self.box.run([postinst, "abort-remove"], timeout=60)
        wait_until(lambda: self.state() == ("active", "running"), 30, "running again after abort-remove")
        self.assertNotEqual(self.main_pid(), pid)
        wait_until(lambda: self.has_vip("a"), 20, "the VIP on the container after abort-remove")
        # A service that was stopped stays stopped.
        self.box.run(["systemctl", "stop", "vipproxy"], timeout=60)
        self.box.run([prerm, "remove"], timeout=60)
        self.box.run([postinst, "abort-remove"], timeout=60)
        self.assertEqual(self.state(), ("inactive", "dead"), "abort-remove started a service that was stopped")
        self.box.run(["systemctl", "start", "vipproxy"], timeout=60)
        wait_until(lambda: self.has_vip("a"), 20, "the VIP on the container")
        # dpkg -r stops it (priority 0, VIP removed); the conffile stays.
        self.box.run(["systemctl", "enable", "vipproxy"])
        wants = "/etc/systemd/system/multi-user.target.wants/vipproxy.service"
        self.dpkg("-r", "vipproxy")
        self.assertEqual(self.show("ActiveState")["ActiveState"], "inactive")
        self.assertFalse(self.has_vip("a"))
        self.assertEqual(self.box.run(["test", "-f", CONF], check=False).returncode, 0, "remove lost the conffile")
        self.dpkg("-P", "vipproxy")
        self.assertNotEqual(self.box.run(["test", "-e", "/etc/vipproxy"], check=False).returncode, 0)
        # The hooks' state directory (StateDirectory=) goes with the purge too.
        self.assertNotEqual(self.box.run(["test", "-e", "/var/lib/vipproxy"], check=False).returncode, 0)
        # The operator's `systemctl enable` link goes with the purge (as dh's deb-systemd-helper purge).
        self.assertNotEqual(self.box.run(["test", "-L", wants], check=False).returncode, 0, "enable link left")


if __name__ == "__main__":
    testmain.main()
