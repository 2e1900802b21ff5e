#!/usr/bin/python3
# Over 500 lines: up, wait and down share the lab's recorded State and teardown order; shared helpers are in labkit.py.
"""The guide's catalog cluster in network namespaces (scripts/lab does the
root check and package install, then runs this).

Layout (every name derives from the prefix, default "vl-", kept in state.json
so `down` finds everything again):
  <prefix>br         namespace holding bridge br0 and the switch end of each veth
  <prefix>catalog01  eth0 10.88.1.151/24: etcd, Patroni + PostgreSQL 15, frontend
  <prefix>catalog02  eth0 10.88.1.152/24: the same
  <prefix>dirtoha    eth0 10.88.1.180/24: the client (Director) host, 3rd etcd member
VIP 10.88.1.160/24, client port 5433.

Safety: nothing is created in the root namespace; every daemon runs under
`ip netns exec`; each PID is recorded with its start time under
<state>/pids/ and stopped by that PID. A last sweep stops any process whose
network namespace is one of the lab's (the inode of each lab name that
exists, compared with /proc/PID/ns/net), which catches a daemon started by
an `up` killed before it could write the PID down.
"""
import argparse
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import labkit  # noqa: E402  (waits, processes, namespaces shared with the test labs)
from labkit import log  # noqa: E402,F401
GUIDE = os.path.join(REPO, "tests", "fixtures", "guide")
EXAMPLES = os.path.join(REPO, "tests", "fixtures", "config")
PGBIN = "/usr/lib/postgresql/15/bin"
PY = "/usr/bin/python3"
DEFAULT_STATE = "/run/vipproxy-lab"
DEFAULT_PREFIX = "vl-"

CATALOGS = {"catalog01": "10.88.1.151", "catalog02": "10.88.1.152"}
HOSTS = dict(CATALOGS, dirtoha="10.88.1.180")
VIP = "10.88.1.160"
VIP_PORT = 5433
PREFIXLEN = 24
PGPASSWORD = "password"
ADMIN = "127.0.0.1:8405"


def run(argv, check=True, **kw):
    return subprocess.run(argv, check=check, text=True, capture_output=True, **kw)


class Failure(Exception):
    pass


# ------------------------------------------------------------------ state

class State:
    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.file = os.path.join(self.dir, "state.json")
        self.data = {}
        if os.path.exists(self.file):
            with open(self.file) as f:
                self.data = json.load(f)

    def save(self):
        tmp = self.file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=2, sort_keys=True)
        os.replace(tmp, self.file)

    @property
    def prefix(self):
        return self.data.get("prefix", DEFAULT_PREFIX)

    def ns(self, host):
        return self.prefix + host

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def all_ns(self):
        return [self.ns("br")] + [self.ns(h) for h in HOSTS]


def proc_starttime(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def proc_netns(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def alive(pid):
    st = proc_starttime(pid)
    if st is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def record_pid(st, name, pid):
    os.makedirs(st.path("pids"), exist_ok=True)
    tmp = st.path("pids", name + ".pid.tmp")
    with open(tmp, "w") as f:
        f.write(f"{pid} {proc_starttime(pid) or 0}\n")
    os.replace(tmp, st.path("pids", name + ".pid"))


def recorded(st, name):
    """(pid, alive-and-still-ours) of a recorded process, or (None, False)."""
    try:
        with open(st.path("pids", name + ".pid")) as f:
            pid, start = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None, False
    return pid, alive(pid) and proc_starttime(pid) == start


def lab_inodes(st):
    """Network namespace inodes of the lab, never the root namespace's: of
    the lab's names that exist now. Not the inodes state.json recorded when
    they were made: once a namespace is deleted (and freed) the kernel
    hands its inode number out again to a later namespace, anyone's
    (another test's), and `down` would have stopped every process in it."""
    root = {proc_netns(1), proc_netns(os.getpid())}
    inodes = set()
    for ns in st.all_ns():
        try:
            inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
        except OSError:
            pass
    return inodes - root - {None}


def ours(st, pid):
    return proc_netns(pid) in lab_inodes(st)


def stop_pids(pids, sig=signal.SIGTERM, timeout=15.0, what=""):
    """Signals each PID, waits until all are gone, then SIGKILLs the rest."""
    pids = [p for p in pids if alive(p)]
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
    def all_gone(group):
        return lambda: not any(alive(p) for p in group)

    labkit.poll_until(all_gone(pids), timeout)
    left = [p for p in pids if alive(p)]
    for p in left:
        log(f"  {what or 'process'} {p} still alive after {timeout:.0f}s: SIGKILL")
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    labkit.poll_until(all_gone(left), 5)


# ------------------------------------------------------------------ network

def netns_exists(name):
    return os.path.exists(f"/run/netns/{name}")


def ns_cmd(st, host, argv):
    return labkit.netns_exec(st.ns(host), argv)


def create_network(st):
    # scripts/lab did this already; again here for a run of this file
    # without it: nothing of the lab ever leaves through a real interface.
    labkit.blackhole_lab_subnet()
    br = st.ns("br")
    inodes = {}
    for ns in st.all_ns():
        run(["ip", "netns", "add", ns])
        inodes[ns] = os.stat(f"/run/netns/{ns}").st_ino
        st.data["ns_inodes"] = inodes
        st.save()
        # No IPv6 chatter (ND/MLD) in captures; the IPv6 tests turn it back on.
        for key in ("all", "default"):
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    run(["ip", "-n", br, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", br, "link", "set", "br0", "up"])
    for host, addr in HOSTS.items():
        # Both veth ends are born in lab namespaces: the root namespace never sees them.
        port = "v-" + host
        run(["ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", st.ns(host)])
        run(["ip", "-n", br, "link", "set", port, "master", "br0", "up"])
        run(["ip", "-n", st.ns(host), "addr", "add", f"{addr}/{PREFIXLEN}", "dev", "eth0"])
        run(["ip", "-n", st.ns(host), "link", "set", "eth0", "up"])


def vip_holders(st):
    holders = []
    for host in CATALOGS:
        r = run(["ip", "-n", st.ns(host), "-4", "-o", "addr", "show", "dev", "eth0"], check=False)
        if f" {VIP}/" in r.stdout:
            holders.append(host)
    return holders


# ------------------------------------------------------------------ processes

def spawn(st, name, host, argv, user=None, env=None):
    """Starts argv in host's namespace, in its own session so it outlives
    `up`; `ip netns exec` and setpriv both exec, so the PID is the daemon's.
    Every daemon starts in its node's state directory, never in the caller's
    (the checkout): a clone in /root (0700) is out of reach of postgres, and
    PostgreSQL's tools refuse to run from a directory they cannot enter."""
    logpath = st.path("logs", name + ".log")
    os.makedirs(os.path.dirname(logpath), exist_ok=True)
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"] + argv
    with open(logpath, "ab") as logf, labkit.stops_deferred():  # recorded before a stop can unwind past it
        p = subprocess.Popen(ns_cmd(st, host, argv), stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True, cwd=st.path(host),
                             env=dict(os.environ, **(env or {})))
        record_pid(st, name, p.pid)
        procs = st.data.setdefault("procs", [])
        if name not in procs:
            procs.append(name)
            st.save()
    return p


def check_reachable_by(path, user):
    """Patroni and PostgreSQL run as `user` from the state directory: say in
    one line what to do when a parent directory shuts that user out (e.g.
    --state-dir under /root, mode 0700), instead of a bootstrap that never ends."""
    r = run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", "test", "-x", path], check=False,
            cwd="/")
    if r.returncode != 0:
        raise Failure(f"{path} is out of reach of the {user} user, which runs Patroni and PostgreSQL there: "
                      f"use a --state-dir every user can traverse (default {DEFAULT_STATE})")


def ensure_user(name, home="/nonexistent"):
    try:
        pwd.getpwnam(name)
    except KeyError:
        run(["useradd", "--system", "--no-create-home", "--home-dir", home, "--shell", "/usr/sbin/nologin", name])


# ------------------------------------------------------------------ etcd

def etcd_members(st):
    n = st.data["etcd_members"]
    return list(HOSTS)[:n]


def start_etcd(st):
    members = etcd_members(st)
    cluster = ",".join(f"{h}=http://{HOSTS[h]}:2380" for h in members)
    for h in members:
        addr = HOSTS[h]
        data = st.path(h, "etcd")
        os.makedirs(data, mode=0o700, exist_ok=True)
        spawn(st, f"etcd-{h}", h, [
            "etcd", "--name", h, "--data-dir", data,
            "--listen-peer-urls", f"http://{addr}:2380",
            "--initial-advertise-peer-urls", f"http://{addr}:2380",
            "--listen-client-urls", f"http://{addr}:2379,http://127.0.0.1:2379",
            "--advertise-client-urls", f"http://{addr}:2379",
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "vipproxy-lab", "--log-level", "warn"])


# ------------------------------------------------------------------ Patroni

def dcs_timings(st):
    if st.data["fast_dcs"]:
        return {"ttl": 10, "loop_wait": 2, "retry_timeout": 3}
    return {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}  # the guide's


def patroni_yaml(st, host):
    addr = HOSTS[host]
    pg = st.path(host, "pg")
    t = dcs_timings(st)
    hosts = "\n".join(f"  - {HOSTS[h]}:2379" for h in etcd_members(st))
    hba = ["local all all trust",
           "host replication replicator 127.0.0.1/32 md5",
           "host replication replicator 10.88.1.0/24 md5",
           "host all all 10.88.1.0/24 md5",
           "host all all 127.0.0.1/32 md5"]
    hba_yaml = "\n".join(f"  - {line}" for line in hba)
    return f"""# Generated by scripts/lab for {host}; the guide's patroni.yml with lab paths.
scope: catalog
namespace: /service/
name: {host}
restapi:
  listen: {addr}:8008
  connect_address: {addr}:8008
etcd3:
  hosts:
{hosts}
bootstrap:
  dcs:
    ttl: {t['ttl']}
    loop_wait: {t['loop_wait']}
    retry_timeout: {t['retry_timeout']}
    maximum_lag_on_failover: 1048576
    synchronous_mode: {'true' if st.data['synchronous'] else 'false'}
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        wal_log_hints: "on"
  initdb:
  - encoding: UTF8
  - locale: C
postgresql:
  listen: 0.0.0.0:5432
  connect_address: {addr}:5432
  data_dir: {pg}/data
  bin_dir: {PGBIN}
  pgpass: {pg}/pgpass
  use_unix_socket: true
  authentication:
    superuser:
      username: postgres
      password: {PGPASSWORD}
    replication:
      username: replicator
      password: {PGPASSWORD}
  parameters:
    unix_socket_directories: {pg}/run
  pg_hba:
{hba_yaml}
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
log:
  level: INFO
"""


def prepare_patroni(st, host):
    pg = st.path(host, "pg")
    for d in (pg, os.path.join(pg, "run")):
        os.makedirs(d, mode=0o755, exist_ok=True)
        shutil.chown(d, "postgres", "postgres")
    with open(st.path(host, "patroni.yml"), "w") as f:
        f.write(patroni_yaml(st, host))


def start_patroni(st, host):
    spawn(st, f"patroni-{host}", host, ["/usr/bin/patroni", st.path(host, "patroni.yml")], user="postgres",
          env={"HOME": st.path(host, "pg"), "LC_ALL": "C.UTF-8", "PYTHONUNBUFFERED": "1"})


def etcd_has_key(st, key):
    r = run(ns_cmd(st, "catalog01", ["etcdctl", "--endpoints=127.0.0.1:2379", "--command-timeout=2s", "get",
                                     "--keys-only", key]), check=False, env=dict(os.environ, ETCDCTL_API="3"))
    return r.returncode == 0 and key in r.stdout


def wake_leader_when_replica_registers(st):
    """The replica streams only once the leader has created its replication
    slot, which the leader does in its next HA loop, up to loop_wait (10 s)
    later. A PATCH /config that changes nothing wakes that loop at once
    (Patroni's REST API calls ha.wakeup()); best effort, bring-up speed only."""
    deadline = time.monotonic() + 30
    while not etcd_has_key(st, "/service/catalog/members/catalog02"):
        if time.monotonic() > deadline:
            return
        check_alive(st)
        time.sleep(0.2)
    body = json.dumps({"loop_wait": dcs_timings(st)["loop_wait"]})
    run(ns_cmd(st, "catalog01", ["curl", "-s", "-m", "3", "-X", "PATCH", "-H", "Content-Type: application/json",
                                 "-d", body, f"http://{CATALOGS['catalog01']}:8008/config"]), check=False)


# ------------------------------------------------------------------ frontends

def guide_text(name):
    with open(os.path.join(GUIDE, name)) as f:
        return f.read()


def lab_addresses(text):
    return text.replace("192.168.1.", "10.88.1.").replace("enp0s3", "eth0")


def haproxy_cfg(st, host):
    d = st.path(host)
    # Debian's stock global/defaults (what the guide appends to), with the
    # per-host paths the shared filesystem needs and logs on stderr.
    return f"""# Generated by scripts/lab: Debian 12's /etc/haproxy/haproxy.cfg global and defaults
# (per-node socket, logs to stderr) + the guide's section, addresses adapted.
global
	log stderr format iso local0 info
	chroot /var/lib/haproxy
	stats socket {d}/haproxy.sock mode 660 level admin
	stats timeout 30s
	user haproxy
	group haproxy

defaults
	log	global
	mode	http
	option	httplog
	option	dontlognull
        timeout connect 5000
        timeout client  50000
        timeout server  50000
	errorfile 400 /etc/haproxy/errors/400.http
	errorfile 403 /etc/haproxy/errors/403.http
	errorfile 408 /etc/haproxy/errors/408.http
	errorfile 500 /etc/haproxy/errors/500.http
	errorfile 502 /etc/haproxy/errors/502.http
	errorfile 503 /etc/haproxy/errors/503.http
	errorfile 504 /etc/haproxy/errors/504.http

{lab_addresses(guide_text('haproxy.cfg'))}"""


def start_haproxy_keepalived(st, host):
    d = st.path(host)
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(haproxy_cfg(st, host))
    run(ns_cmd(st, host, ["haproxy", "-c", "-q", "-f", cfg]))
    spawn(st, f"haproxy-{host}", host, ["haproxy", "-db", "-f", cfg, "-p", os.path.join(d, "haproxy.pid")])

    ensure_user("keepalived_script")
    script = os.path.join(d, "check_haproxy.sh")
    with open(script, "w") as f:
        f.write(guide_text("check_haproxy.sh"))
    os.chmod(script, 0o755)  # enable_script_security: not writable by group/others
    conf = os.path.join(d, "keepalived.conf")
    text = lab_addresses(guide_text(f"keepalived-{host}.conf")).replace("/etc/keepalived/check_haproxy.sh", script)
    if st.data.get("vrrp_v3_fast"):
        text = vrrp_v3_fast_keepalived(text)
    with open(conf, "w") as f:
        f.write(f"# Generated by scripts/lab: the guide's keepalived-{host}.conf, addresses adapted.\n" + text)
    os.chmod(conf, 0o644)
    spawn(st, f"keepalived-{host}", host, [
        "keepalived", "-n", "-l", "-G", "-D", "-f", conf, "-p", os.path.join(d, "keepalived.pid"),
        "-r", os.path.join(d, "keepalived-vrrp.pid"), "-c", os.path.join(d, "keepalived-checkers.pid")])


def vipproxy_yaml(st, host):
    with open(os.path.join(EXAMPLES, f"{host}.yaml")) as f:
        text = lab_addresses(f.read())
    note = ""
    if st.data.get("vrrp_v3_fast"):
        text = vrrp_v3_fast_yaml(text)
        note = " VRRPv3, advert_int 0.1 (--vrrp-v3-fast),"
    return f"# Generated by scripts/lab from tests/fixtures/config/{host}.yaml,{note} addresses adapted.\n" + text


# --vrrp-v3-fast: VRRPv3 with 100 ms adverts (RFC 5798 centiseconds) on both
# frontends; v3 has no authentication, so the guide's PASS block goes.
def vrrp_v3_fast_yaml(text):
    out, n = re.subn(r"(?m)^(\s*)advert_int: 1s\n", r"\1version: 3\n\1advert_int: 0.1\n", text)
    out, m = re.subn(r"(?m)^\s*authentication:\n(\s+(type|password): .*\n)+", "", out)
    if n != 1 or m != 1:
        raise Failure("--vrrp-v3-fast: the vipproxy fixture no longer has one 'advert_int: 1s' and one "
                      "'authentication:' block")
    return out


def vrrp_v3_fast_keepalived(text):
    out, n = re.subn(r"(?m)^advert_int 1\s*$", "version 3\nadvert_int 0.1", text)
    out, m = re.subn(r"(?ms)^authentication \{.*?^\}\n", "", out)
    if n != 1 or m != 1:
        raise Failure("--vrrp-v3-fast: the guide's keepalived.conf no longer has one 'advert_int 1' and one "
                      "authentication block")
    return out


def start_vipproxy(st, host):
    binary = st.data["vipproxy_bin"]
    cfg = st.path(host, "vipproxy.yaml")
    with open(cfg, "w") as f:
        f.write(vipproxy_yaml(st, host))
    r = run(ns_cmd(st, host, [binary, "--check-config", cfg]), check=False)
    if r.returncode != 0:
        raise Failure(f"{binary} rejects {cfg}: {r.stdout}{r.stderr}")
    spawn(st, f"vipproxy-{host}", host, [binary, "--config", cfg])


# ------------------------------------------------------------------ up

def cmd_up(args):
    t0 = time.monotonic()
    st = State(args.state_dir)
    if os.path.isdir(st.dir):
        def busy():
            return [ns for ns in st.all_ns() if netns_exists(ns)] + \
                   [n for n in st.data.get("procs", []) if recorded(st, n)[1]]
        if busy():
            owner = st.data.get("owner")
            if not owner or (alive(owner["pid"]) and proc_starttime(owner["pid"]) == owner["start"]):
                raise Failure(f"a lab is up in {st.dir} ({', '.join(busy())}): run `scripts/lab down` first")
            # Brought up by a program that was to take it down (--owner-pid:
            # a test, the demo) and was killed before it could (SIGKILL, a
            # CTest timeout): nobody else will, and every later run would
            # stop here.
            log(f"the lab in {st.dir} belongs to PID {owner['pid']}, which is gone: taking it down first")
            teardown(st)
            if busy():
                raise Failure(f"the lab left in {st.dir} by PID {owner['pid']} did not go down: {', '.join(busy())}")
        shutil.rmtree(st.dir, ignore_errors=True)
    clash = [ns for ns in State(st.dir).all_ns() if netns_exists(ns)]
    if clash:
        raise Failure(f"namespaces {', '.join(clash)} exist but are not in {st.dir}: not touching them")
    binary = os.path.abspath(os.environ.get("VIPPROXY_BIN", os.path.join(REPO, "build", "vipproxy")))
    if args.frontend == "vipproxy" and not os.access(binary, os.X_OK):
        raise Failure(f"{binary} not found: build it (scripts/build) or set VIPPROXY_BIN")

    os.makedirs(st.dir, mode=0o755)
    os.chmod(st.dir, 0o755)  # postgres must traverse it
    try:
        check_reachable_by(st.dir, "postgres")
    except Failure:
        shutil.rmtree(st.dir, ignore_errors=True)
        raise
    st.data = {"prefix": DEFAULT_PREFIX, "frontend": args.frontend, "etcd_members": args.etcd_members,
               "synchronous": args.synchronous, "fast_dcs": args.fast_dcs,
               "vrrp_v3_fast": args.vrrp_v3_fast, "vip": VIP, "vip_port": VIP_PORT,
               "hosts": HOSTS, "vipproxy_bin": binary, "procs": [], "pg_password": PGPASSWORD}
    if args.owner_pid:
        st.data["owner"] = {"pid": args.owner_pid, "start": proc_starttime(args.owner_pid)}
    st.save()
    for h in HOSTS:
        os.makedirs(st.path(h), mode=0o755, exist_ok=True)

    def interrupted(signum, _frame):
        raise Failure(f"interrupted by signal {signum}")
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)

    try:
        create_network(st)
        log(f"namespaces {', '.join(st.all_ns())} up, VIP {VIP}/{PREFIXLEN}")
        start_etcd(st)
        for h in CATALOGS:
            prepare_patroni(st, h)
        # catalog01 first so it bootstraps the cluster (the guide's MASTER);
        # catalog02 once catalog01 holds the leader key: started earlier it
        # finds no leader and sleeps a whole loop_wait before cloning.
        start_patroni(st, "catalog01")
        if args.frontend == "haproxy-keepalived":
            for h in CATALOGS:
                start_haproxy_keepalived(st, h)
        else:
            for h in CATALOGS:
                start_vipproxy(st, h)
        deadline = time.monotonic() + 60
        while not etcd_has_key(st, "/service/catalog/leader"):
            if time.monotonic() > deadline:
                raise Failure("catalog01's Patroni never became leader (see logs/patroni-catalog01.log)")
            check_alive(st)
            time.sleep(0.2)
        log(f"catalog01 holds the leader key (+{time.monotonic() - t0:.1f}s); starting catalog02's Patroni")
        start_patroni(st, "catalog02")
        wake_leader_when_replica_registers(st)
        st.data["started"] = time.time()
        st.save()
        # Network checks run from the Director host, like every client.
        r = subprocess.run(ns_cmd(st, "dirtoha", [PY, os.path.abspath(__file__), "_wait", "--state-dir", st.dir,
                                                  "--t0", repr(t0)]))
        if r.returncode != 0:
            raise Failure("the lab did not come up (logs under " + st.path("logs") + ")")
    except BaseException as e:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log(f"up failed: {e}; stopping what was started (logs kept in {st.path('logs')})")
        teardown(st, keep=True)
        raise
    log(f"lab up in {time.monotonic() - t0:.1f}s (frontend {args.frontend}, "
        f"{args.etcd_members} etcd members, state {st.dir})")


def check_alive(st):
    for n in st.data.get("procs", []):
        pid, ok = recorded(st, n)
        if not ok:
            raise Failure(f"{n} (pid {pid}) exited; see {st.path('logs', n + '.log')}\n" + tail(st, n))


def tail(st, name, n=15):
    try:
        with open(st.path("logs", name + ".log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def http_get(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def psql(sql, host, port, timeout=5):
    env = dict(os.environ, PGPASSWORD=PGPASSWORD, PGCONNECT_TIMEOUT="2")
    r = run([f"{PGBIN}/psql", "-X", "-At", "-h", host, "-p", str(port), "-U", "postgres", "-d", "postgres",
             "-c", sql], check=False, env=env, timeout=timeout)
    return r.stdout.strip() if r.returncode == 0 else None


def cmd_wait(args):
    """Runs inside the dirtoha namespace; polls each milestone to its deadline."""
    st = State(args.state_dir)
    t0 = args.t0

    def step(what, cond, timeout):
        v, last = labkit.poll(cond, timeout, interval=0.2, between=lambda: check_alive(st))
        if v:
            log(f"{what}: {v if v is not True else 'ok'} (+{time.monotonic() - t0:.1f}s)")
        else:
            log(f"{what}: not reached after {timeout}s" + (f" (last error: {last})" if last else ""))
        return v

    def etcd_ok():
        for h in etcd_members(st):
            code, body = http_get(f"http://{HOSTS[h]}:2379/health")
            if code != 200 or json.loads(body).get("health") != "true":
                return False
        return f"{len(etcd_members(st))} members healthy"

    def leader():
        prim = [h for h in CATALOGS if http_get(f"http://{HOSTS[h]}:8008/primary")[0] == 200]
        return prim[0] if len(prim) == 1 else None

    try:
        if not step("etcd", etcd_ok, 30):
            raise Failure("etcd not healthy")
        lead = step("Patroni leader", leader, 60)
        if not lead:
            raise Failure("no Patroni leader")
        others = [h for h in CATALOGS if h != lead]

        sync = st.data["synchronous"]

        def streaming():
            # Patroni 3.0 lists a healthy replica as "running": ask the leader.
            rows = psql("select application_name from pg_stat_replication where state = 'streaming'"
                        + (" and sync_state in ('sync', 'quorum')" if sync else ""), HOSTS[lead], 5432)
            return rows is not None and set(others) <= set(rows.split()) and \
                f"{','.join(others)} streaming" + (" (synchronous)" if sync else "")
        if not step("replica", streaming, 120):
            raise Failure("the replica is not streaming")

        vip_wait = 30 if st.data["frontend"] == "haproxy-keepalived" else 15
        holder = step("VIP", lambda: len(vip_holders(st)) == 1 and "on " + vip_holders(st)[0], vip_wait)
        if holder:
            ans = step(f"psql {VIP}:{VIP_PORT}",
                       lambda: psql("select 'answered by ' || inet_server_addr()", VIP, VIP_PORT), 30)
            if not ans:
                raise Failure(f"no answer from {VIP}:{VIP_PORT}")
        elif st.data["frontend"] == "haproxy-keepalived":
            raise Failure(f"VIP held by {vip_holders(st) or 'no node'}")
        else:
            log(f"WARNING: VIP {VIP} is on {vip_holders(st) or 'no node'} (vipproxy's VRRP not done yet?); "
                "checking each node's proxy directly")
            for h in CATALOGS:
                ans = step(f"psql {HOSTS[h]}:{VIP_PORT}",
                           lambda h=h: psql("select 'answered by ' || inet_server_addr()", HOSTS[h], VIP_PORT), 30)
                if not ans:
                    raise Failure(f"no answer from vipproxy on {h} ({HOSTS[h]}:{VIP_PORT})")
    except Failure as e:
        log(f"FAILED: {e}")
        return 1
    return 0


# ------------------------------------------------------------------ down

def stop_named(st, names, sig=signal.SIGTERM, timeout=15.0):
    pids = []
    for n in names:
        pid, ok = recorded(st, n)
        if ok:
            pids.append(pid)
    if pids:
        stop_pids(pids, sig, timeout, what="/".join(names))


def pidfile_pid(path):
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def teardown(st, keep=False):
    procs = st.data.get("procs", [])
    t0 = time.monotonic()

    def stage(what):
        log(f"  {what} (+{time.monotonic() - t0:.1f}s)")
    # Switch ports a test took down come back first: a Patroni or etcd member
    # cut off from its peers takes its whole timeout (40 s, 15 s) to stop.
    if netns_exists(st.ns("br")):
        for h in HOSTS:
            run(["ip", "-n", st.ns("br"), "link", "set", "v-" + h, "up"], check=False)
    # Frontends first (keepalived's SIGTERM sends priority 0 and drops the VIP).
    stop_named(st, [n for n in procs if n.startswith(("vipproxy-", "haproxy-", "keepalived-"))])
    for h in CATALOGS:
        for f in ("keepalived-vrrp.pid", "keepalived-checkers.pid", "haproxy.pid"):
            pid = pidfile_pid(st.path(h, f))
            if pid and alive(pid) and ours(st, pid):
                stop_pids([pid], what=f)
    stage("frontends stopped")
    # Patroni stops its PostgreSQL on SIGTERM.
    stop_named(st, [n for n in procs if n.startswith("patroni-")], timeout=40)
    for h in CATALOGS:
        pm = st.path(h, "pg", "data", "postmaster.pid")
        pid = pidfile_pid(pm)
        if pid and alive(pid) and ours(st, pid):
            log(f"  postmaster {pid} of {h} outlived Patroni: fast shutdown")
            stop_pids([pid], signal.SIGINT, 20, what="postmaster")
    stage("Patroni and PostgreSQL stopped")
    # One etcd member at a time: stopped together, each one's leadership
    # transfer waits for a peer that is going away too (~7 s).
    for n in reversed([n for n in procs if n.startswith("etcd-")]):
        stop_named(st, [n])
    stage("etcd stopped")
    # Anything else still living in a lab namespace (e.g. started by an `up`
    # killed before it recorded the PID, or a test's client).
    inodes = lab_inodes(st)
    if inodes:
        stray = []
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != os.getpid() and proc_netns(int(d)) in inodes:
                stray.append(int(d))
        if stray:
            log(f"  stopping {len(stray)} more process(es) in lab namespaces: {stray}")
            stop_pids(stray, timeout=10, what="lab process")
    for ns in st.all_ns():
        if netns_exists(ns):
            r = run(["ip", "netns", "del", ns], check=False)
            if r.returncode != 0:
                log(f"  ip netns del {ns}: {r.stderr.strip()}")
    stage("namespaces deleted")
    if not keep and os.path.isdir(st.dir):
        shutil.rmtree(st.dir, ignore_errors=True)


def cmd_down(args):
    st = State(args.state_dir)
    if not st.data and not os.path.isdir(st.dir):
        # Nothing recorded: still clear default-named namespaces left by a
        # very early failure (inode check in teardown keeps it to the lab's).
        if not any(netns_exists(ns) for ns in st.all_ns()):
            log("no lab to stop")
            return 0
    t0 = time.monotonic()
    teardown(st, keep=args.keep)
    left = [ns for ns in st.all_ns() if netns_exists(ns)]
    alive_procs = [n for n in st.data.get("procs", []) if recorded(st, n)[1]]
    if left or alive_procs:
        log(f"down incomplete: namespaces {left}, processes {alive_procs}")
        return 1
    log(f"lab down in {time.monotonic() - t0:.1f}s" + (f" (state kept in {st.dir})" if args.keep else ""))
    return 0


# ------------------------------------------------------------------ status

def vipproxy_summary(st, host):
    """One line from vipproxy's admin /status (fetched inside the node's namespace)."""
    r = run(ns_cmd(st, host, ["curl", "-s", "-m", "2", f"http://{ADMIN}/status"]), check=False)
    if r.returncode != 0:
        return f"no answer from admin {ADMIN}"
    try:
        j = json.loads(r.stdout)
    except ValueError:
        return "admin /status is not JSON: " + r.stdout[:120]
    parts = []
    for p in j.get("proxies", []):
        ups = [b.get("name") for b in p.get("backends", []) if b.get("eligible")]
        parts.append(f"proxy {p.get('name')} -> {p.get('current_backend')} (eligible {ups}, "
                     f"{p.get('sessions_current')} sessions)")
    for v in j.get("vrrp", []):
        parts.append(f"vrrp {v.get('name')} {v.get('state')} prio {v.get('priority')}/"
                     f"{v.get('configured_priority')} master {v.get('master_address')}"
                     + (f" fault {v['fault_reason']}" if v.get("fault_reason") else ""))
    if not j.get("vrrp"):
        parts.append("no vrrp instance running")
    return "; ".join(parts)


def status_json(st):
    out = {k: st.data.get(k) for k in ("frontend", "etcd_members", "synchronous", "fast_dcs", "vrrp_v3_fast", "vip", "vip_port",
                                       "hosts", "prefix")}
    out["state_dir"] = st.dir
    out["namespaces"] = {ns: netns_exists(ns) for ns in st.all_ns()}
    out["timings"] = dcs_timings(st)
    out["vip_holders"] = vip_holders(st) if all(out["namespaces"].values()) else []
    out["processes"] = {n: {"pid": recorded(st, n)[0], "running": recorded(st, n)[1]}
                        for n in st.data.get("procs", [])}
    members = []
    if all(out["namespaces"].values()):
        r = run(ns_cmd(st, "catalog01", ["patronictl", "-c", st.path("catalog01", "patroni.yml"), "list",
                                         "-f", "json"]), check=False, timeout=30)
        try:
            members = json.loads(r.stdout)
        except ValueError:
            pass
    out["members"] = members
    out["leader"] = next((m["Member"] for m in members if m.get("Role") == "Leader"), None)
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def cmd_status(args):
    st = State(args.state_dir)
    if not st.data:
        print(f"no lab in {st.dir}")
        return 1
    if args.json:
        return status_json(st)
    print(f"state dir {st.dir}; frontend {st.data['frontend']}; etcd members {st.data['etcd_members']}; "
          f"synchronous_mode {st.data['synchronous']}; timings {dcs_timings(st)}")
    missing = [ns for ns in st.all_ns() if not netns_exists(ns)]
    print("namespaces: " + ", ".join(st.all_ns()) + (f" (MISSING: {', '.join(missing)})" if missing else ""))
    if missing:
        return 1
    r = run(ns_cmd(st, "catalog01", ["patronictl", "-c", st.path("catalog01", "patroni.yml"), "list"]), check=False,
            timeout=30)
    print(r.stdout.rstrip() or r.stderr.rstrip())
    holders = vip_holders(st)
    if len(holders) == 1:
        print(f"VIP {VIP}: on {holders[0]}")
    elif not holders:
        print(f"VIP {VIP}: MISSING (on no node)")
    else:
        print(f"VIP {VIP}: on {len(holders)} nodes ({', '.join(holders)}): SPLIT BRAIN")
    print("processes:")
    for n in st.data.get("procs", []):
        pid, ok = recorded(st, n)
        print(f"  {n:22} pid {pid or '-':>7}  {'running' if ok else 'NOT RUNNING'}")
    if st.data["frontend"] == "haproxy-keepalived":
        for h in CATALOGS:
            pid = pidfile_pid(st.path(h, "keepalived-vrrp.pid"))
            print(f"  keepalived VRRP child of {h}: pid {pid}, {'running' if pid and alive(pid) else 'NOT RUNNING'}")
    else:
        for h in CATALOGS:
            print(f"  vipproxy {h}: " + vipproxy_summary(st, h))
    return 0


def cmd_exec(args):
    st = State(args.state_dir)
    if args.node not in HOSTS:
        raise Failure(f"unknown node {args.node} (one of {', '.join(HOSTS)})")
    os.environ.setdefault("PGPASSWORD", PGPASSWORD)  # psql -h VIP -p 5433 -U postgres just works
    os.execvp("ip", ns_cmd(st, args.node, args.argv))


def main():
    ap = argparse.ArgumentParser(prog="scripts/lab", description="The guide's Bacula catalog cluster "
                                 "(etcd, Patroni, PostgreSQL 15, vipproxy or HAProxy + keepalived) in network "
                                 "namespaces. See tests/e2e/README.md.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build the lab and wait until a client gets through the VIP")
    up.add_argument("--frontend", choices=["vipproxy", "haproxy-keepalived"], default="vipproxy")
    up.add_argument("--etcd-members", type=int, choices=[2, 3], default=3,
                    help="3 (default) adds a member on dirtoha; 2 is the guide exactly")
    up.add_argument("--synchronous", action="store_true", help="Patroni synchronous_mode: true")
    up.add_argument("--fast-dcs", action="store_true", help="ttl 10, loop_wait 2, retry_timeout 3 (guide: 30/10/10)")
    up.add_argument("--vrrp-v3-fast", action="store_true",
                    help="VRRPv3 with advert_int 0.1 s on both nodes, either frontend (guide: v2, 1 s, PASS)")
    up.add_argument("--owner-pid", type=int, help="the program that will take the lab down (a test, the demo): "
                    "once it is gone, the next `up` takes the lab down instead of refusing")
    down = sub.add_parser("down", help="stop everything, delete the namespaces and the state dir")
    down.add_argument("--keep", action="store_true", help="keep the state dir (logs, data)")
    stp = sub.add_parser("status", help="patronictl list, VIP holder, frontend processes")
    stp.add_argument("--json", action="store_true", help="one JSON object for tests")
    ex = sub.add_parser("exec", help="run a command inside a node's namespace")
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    w = sub.add_parser("_wait")
    w.add_argument("--t0", type=float, required=True)
    for p in (up, down, stp, ex, w):
        p.add_argument("--state-dir", default=os.environ.get("VIPPROXY_LAB_STATE", DEFAULT_STATE))
    args = ap.parse_args()
    try:
        return {"up": cmd_up, "down": cmd_down, "status": cmd_status, "exec": cmd_exec,
                "_wait": cmd_wait}[args.cmd](args) or 0
    except Failure as e:
        print(f"scripts/lab: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
