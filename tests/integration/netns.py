"""Network-namespace lab for VRRP tests: a bridge in its own namespace, one
veth per node whose node end is created straight inside the node namespace,
so nothing ever appears in the root namespace (the root only gets a blackhole
route for 10.88.0.0/16, in case anything leaked). Every namespace and process
is recorded by name / PID and removed in close() (also registered atexit).

Names are prefixed with "vpt<pid>-" so a crashed run can never clash with
the next one; close() stops what still runs in them, then deletes only the
names this run created. A run killed outright (SIGKILL: a CTest timeout)
never gets to close(): the next Lab deletes its namespaces, those named
vpt<pid>- with no process of that PID left (labkit.sweep_stale_namespaces).
"""
import atexit
import contextlib
import ctypes
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

# lab.py puts scripts/lab.d (labkit: waits, processes, namespaces) on the path.
import lab  # noqa: E402,F401
import labkit  # noqa: E402
from labkit import hold, log, run  # noqa: E402,F401  (public names of this module)

SUBNET_PREFIX = "10.88."
# `ip netns exec`'s per-namespace /etc (etc_file), shared with the host and
# with every other lab running at once. Module names so that a test can point
# them elsewhere (test_check_dns_netns EtcNetnsShared).
ETC_NETNS = "/etc/netns"
# In ETC_NETNS while a lab that made it (etc_file) or a later one uses it.
ETC_NETNS_MARK_NAME = ".made-by-vipproxy-tests"
# Held (flock) around making ETC_NETNS and marking it, and around removing
# it when only the mark is left: without it, a lab closing (only the mark
# left: unlink the mark, rmdir) and a lab starting (ETC_NETNS exists: no mark
# needed; mkdir inside) interleaved into an ETC_NETNS without a mark, which
# no lab removed any more (left empty once the starting lab closed).
ETC_NETNS_LOCK = "/run/lock/vipproxy-tests-etc-netns.lock"
CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def wait_until(cond, timeout, what, interval=0.02):
    """labkit.wait_until with a finer poll: VRRP timings are tens of ms."""
    return labkit.wait_until(cond, timeout, what, interval)


@contextlib.contextmanager
def in_netns(name):
    """Runs the block with this *thread* in namespace `name` (setns(2) is
    per thread): sockets made inside stay in that namespace afterwards, so
    the test talks to the lab from its own process, root namespace around."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if _LIBC.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
        yield
    finally:
        if _LIBC.setns(own, CLONE_NEWNET) != 0:
            os._exit(3)  # a thread stuck in a lab namespace must not carry on
        os.close(own)
        os.close(target)


def whoami_code(host="0.0.0.0", port=7777, backlog=16):
    """Source for `python3 -c CODE NAME` in a node's namespace: a TCP server on
    host:port that sends NAME to every client and closes, so a client learns
    which node holds the VIP it reached."""
    family = "socket.AF_INET6" if ":" in host else "socket.AF_INET"
    return (f"import socket, sys\n"
            f"s = socket.socket({family})\n"
            f"s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(({host!r}, {port}))\n"
            f"s.listen({backlog})\n"
            f"while True:\n"
            f"    c, _ = s.accept()\n"
            f"    c.sendall(sys.argv[1].encode())\n"
            f"    c.close()\n")


# A name server for a namespace's loopback (python3 -c SILENT_DNS COUNT_FILE)
# that reads queries and never answers, not even with ICMP: glibc waits its
# whole timeout. COUNT_FILE exists once it listens and holds how many
# queries it read.
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


# The names of every Lab: "vpt<PID of the test>-<short>" (Lab.__init__).
STALE_NAME = re.compile(r"^vpt([0-9]+)-")


@contextlib.contextmanager
def _etc_netns_locked():
    """ETC_NETNS_LOCK held (an exclusive flock) for the block: every lab of
    this host, whatever test process runs it, takes it."""
    fd = os.open(ETC_NETNS_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _make_etc_netns(name):
    """Makes ETC_NETNS/NAME, and ETC_NETNS with the mark when there was none
    (one the host had stays unmarked: never removed). Returns the path."""
    d = os.path.join(ETC_NETNS, name)
    with _etc_netns_locked():
        if not os.path.isdir(ETC_NETNS):
            os.makedirs(ETC_NETNS)
            open(os.path.join(ETC_NETNS, ETC_NETNS_MARK_NAME), "w").close()
        os.makedirs(d, exist_ok=True)
    return d


def _remove_etc_netns(name):
    """Removes ETC_NETNS/NAME, and ETC_NETNS itself when only the mark of
    a lab that made it is left (Lab.etc_file)."""
    with _etc_netns_locked():
        shutil.rmtree(os.path.join(ETC_NETNS, name), ignore_errors=True)
        try:
            if os.listdir(ETC_NETNS) == [ETC_NETNS_MARK_NAME]:
                os.unlink(os.path.join(ETC_NETNS, ETC_NETNS_MARK_NAME))
                os.rmdir(ETC_NETNS)
        except OSError:  # none (nothing to remove), or something not a lab's put there meanwhile
            pass


def check_ip_netns():
    """Skips the test (CTest shows it as skipped: tests/integration/testmain.py)
    with a clear reason when namespaces are unusable; on CI (VIPPROXY_NO_SKIP=1)
    a skip is a failure."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("the namespace tests need root (ip netns, raw sockets)")
    if not shutil.which("ip"):
        raise unittest.SkipTest("the namespace tests need iproute2's `ip` (apt-get install iproute2)")
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        raise unittest.SkipTest(f"`ip netns` is unavailable: {r.stderr.strip()}")


class Lab:
    def __init__(self, third_octet=51, ipv6=False):
        check_ip_netns()
        self.ipv6 = ipv6
        self.prefix = f"vpt{os.getpid()}-"
        self.net = f"{SUBNET_PREFIX}{third_octet}"
        labkit.sweep_stale_dirs()  # what a run killed outright left in the temporary directory
        self.dir = tempfile.mkdtemp(prefix="vipproxy-vrrp-")
        os.chmod(self.dir, 0o755)
        labkit.claim_dir(self.dir)
        self.netns = labkit.Namespaces(self.prefix)  # names we created, deleted in close()
        self.processes = labkit.Processes(self.dir)
        self.extra_pids = []   # PIDs read from pid files (keepalived's VRRP child)
        self.nodes = {}        # short name -> namespace
        self.closed = False
        self.etc_dirs = []     # /etc/netns/NAME directories we made (etc_file)
        atexit.register(self.close)
        labkit.stop_on_signals()
        # Safety net first: anything for 10.88/16 that reached the root
        # namespace goes nowhere.
        labkit.blackhole_lab_subnet()
        # What runs that were killed outright (SIGKILL, a CTest timeout) left:
        # their namespaces, by this module's names and a PID that is gone.
        labkit.sweep_stale_namespaces(STALE_NAME, on_delete=_remove_etc_netns)
        self.bridge_ns = self._netns("br")
        # No multicast snooping: ff02::12 / 224.0.0.18 are flooded like on a
        # plain switch, whatever MLD/IGMP reports the nodes send.
        self._in(self.bridge_ns, ["ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
        self._in(self.bridge_ns, ["ip", "link", "set", "br0", "up"])

    @property
    def procs(self):
        return self.processes.procs  # (name, Popen); callers may append and filter

    @procs.setter
    def procs(self, value):
        self.processes.procs = value

    @property
    def namespaces(self):
        return self.netns.names

    # ---- namespaces and links ----
    def _netns(self, short):
        name = self.netns.add(short)
        self._in(name, ["ip", "link", "set", "lo", "up"])
        # No IPv6 (keeps ND/MLD noise out) unless the lab is for IPv6 tests;
        # then no DAD either, so link-local addresses are usable at once.
        for k in ("all", "default"):
            self._in(name, ["sysctl", "-qw", f"net.ipv6.conf.{k}.disable_ipv6={0 if self.ipv6 else 1}"])
            if self.ipv6:
                self._in(name, ["sysctl", "-qw", f"net.ipv6.conf.{k}.accept_dad=0"])
        return name

    def _in(self, ns, argv, check=True, timeout=20):
        return self.netns.run(ns, argv, check=check, timeout=timeout)

    def add_node(self, short, host):
        ns = self._netns(short)
        port = f"v{short}"[:15]
        # The veth pair is born in the bridge namespace and its node end moved
        # straight into the node namespace: never in the root namespace.
        self._in(self.bridge_ns, ["ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
        self._in(self.bridge_ns, ["ip", "link", "set", port, "master", "br0", "up"])
        self._in(ns, ["ip", "addr", "add", f"{self.net}.{host}/24", "dev", "eth0"])
        if self.ipv6:
            for k, v in (("disable_ipv6", 0), ("accept_dad", 0)):
                self._in(ns, ["sysctl", "-qw", f"net.ipv6.conf.eth0.{k}={v}"])
        self._in(ns, ["ip", "link", "set", "eth0", "up"])
        self._in(ns, ["ip", "route", "add", "224.0.0.0/4", "dev", "eth0"])
        self.nodes[short] = ns
        return ns

    def ns(self, short):
        return self.nodes[short]

    def etc_file(self, short, name, text):
        """Writes /etc/netns/<namespace>/<name>: `ip netns exec` mounts it over
        /etc/<name> (resolv.conf, hosts) for what it runs in that namespace.
        The directory is the namespace's own. /etc/netns is shared with the
        host and with other labs (another test may run at once): when a lab
        makes it, it leaves the mark (ETC_NETNS_MARK_NAME) there, and the lab
        that closes last (nothing but the mark left) removes it; one the host
        had stays. Both under ETC_NETNS_LOCK."""
        d = os.path.join(ETC_NETNS, self.nodes[short])
        if d not in self.etc_dirs:
            _make_etc_netns(self.nodes[short])
            self.etc_dirs.append(d)
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def silent_dns(self, short, hosts):
        """Node `short` resolves through its hosts file (`hosts`) and then a
        name server on its loopback that never answers (SILENT_DNS; glibc
        would wait 30 s for it). Returns (the hosts file's path, the file
        counting the server's queries)."""
        self.etc_file(short, "resolv.conf", "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
        hosts_path = self.etc_file(short, "hosts", hosts)
        queries = os.path.join(self.dir, "dns.queries")
        self.spawn("dns", short, [lab.PY, "-c", SILENT_DNS, queries])
        wait_until(lambda: os.path.exists(queries), 10, "the silent name server")
        return hosts_path, queries

    def primary_and_echo(self, short, rest_port, echo_port):
        """On node `short`: a Patroni REST stand-in answering as primary on
        `rest_port` and an echo server on `echo_port`. Returns the stand-in's
        role file (write "replica" to it to demote)."""
        role = os.path.join(self.dir, "rest.role")
        with open(role, "w") as f:
            f.write("primary\n")
        self.standin(short, rest_port, role, os.path.join(self.dir, "rest.stats.json"))
        self.echo_backend(short, echo_port)
        return role

    def standin(self, short, port, role_file, stats_file, name="rest"):
        """On node `short`: a Patroni REST stand-in (patroni_standin.py) on
        the node's 127.0.0.1:`port`, answering as `role_file` says (written
        by the caller) and keeping its counters in `stats_file`; spawned as
        `name` (stopped by close()), not waited for."""
        return self.spawn(name, short, [lab.PY, os.path.join(lab.HERE, "patroni_standin.py"), str(port), role_file,
                                        stats_file])

    def echo_backend(self, short, port, name="echo"):
        """On node `short`: an echo backend (echo_server.py) on the node's
        127.0.0.1:`port`, spawned as `name` (stopped by close()). Not waited
        for: from the root namespace it cannot be reached; the daemon's
        check, or the test's own wait inside the node, sees it come up."""
        return self.spawn(name, short, [lab.PY, os.path.join(lab.HERE, "echo_server.py"), str(port)])

    def sh(self, short, argv, check=True, timeout=20):
        return self._in(self.nodes[short], argv, check=check, timeout=timeout)

    def sh_bridge(self, argv, check=True):
        return self._in(self.bridge_ns, argv, check=check)

    def addresses(self, short, dev="eth0", family="-4"):
        out = self.sh(short, ["ip", "-o", family, "addr", "show", "dev", dev]).stdout
        return re.findall(r"inet6? (\S+)", out)

    def has_address(self, short, addr, dev="eth0"):
        family = "-6" if ":" in addr else "-4"
        return any(a.split("/")[0] == addr for a in self.addresses(short, dev, family))

    def link_local(self, short, dev="eth0"):
        out = self.sh(short, ["ip", "-o", "-6", "addr", "show", "dev", dev, "scope", "link"]).stdout
        m = re.search(r"inet6 (fe80::\S+)/", out)
        return m.group(1) if m else None

    def mac(self, short, dev="eth0"):
        out = self.sh(short, ["ip", "-o", "link", "show", "dev", dev]).stdout
        return re.search(r"link/ether (\S+)", out).group(1)

    def neigh_mac(self, short, addr):
        out = self.sh(short, ["ip", "-6" if ":" in addr else "-4", "neigh", "show", addr, "dev", "eth0"]).stdout
        m = re.search(r"lladdr (\S+)", out)
        return m.group(1) if m else None

    # ---- processes ----
    def spawn(self, name, short, argv, env=None):
        # `ip netns exec` execs the command: the PID is the daemon's own.
        return self.processes.spawn(name, labkit.netns_exec(self.nodes[short], argv), banner=True, env=env)

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        labkit.stop_process(p, sig, timeout)

    def logtail(self, name, n=40):
        return self.processes.logtail(name, n)

    def stop_all(self):
        self.processes.stop_all()
        for pid, comm in self.extra_pids:
            # Only if that PID is still the process we recorded.
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != comm:
                        continue
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        self.extra_pids = []

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.stop_all()
        self.netns.delete_all()
        for d in self.etc_dirs:
            _remove_etc_netns(os.path.basename(d))
        self.etc_dirs = []
        if os.environ.get("VIPPROXY_KEEP_LAB"):
            labkit.release_dir(self.dir)
            log(f"lab logs kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
