"""Loopback test fixtures: real PostgreSQL 15 (a primary and a streaming
replica made with pg_basebackup), a Patroni REST stand-in per node, and the
built vipproxy in front. Every process is recorded and stopped by PID.

Used by tests/integration/test_*.py and by scripts/demo.
"""
import atexit
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
VIPPROXY = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE_DIR, "build", "vipproxy"))
PGBIN = "/usr/lib/postgresql/15/bin"
PY = "/usr/bin/python3"

# Polling, processes and namespaces are shared with netns.py and the
# scenarios of the namespace lab (scripts/lab.d/labkit.py). Appended, not
# inserted: scripts/lab.d has a lab.py of its own.
sys.path.append(os.path.join(HERE, "..", "..", "scripts", "lab.d"))
import labkit  # noqa: E402
from labkit import Processes, log, stop_on_signals, stop_process, wait_until  # noqa: E402,F401


_ports_handed_out = set()


def lift_nofile(want=65536):
    """Raises this process's RLIMIT_NOFILE (soft and, as root, hard) to
    `want`, for tests holding thousands of sockets; the daemon and helper
    processes it starts inherit it. A fresh machine's (or a QEMU guest's)
    login gives 1024/4096, too few for 2,000 sessions through a proxy."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):  # not root: as far as the hard limit goes
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    """A loopback port nobody listens on, never the same one twice in a test.

    Binding port 0 and closing lets the kernel hand the same port out again
    on the next call (CI: a listen port equal to the admin port, refused as a
    clash by the config check), so ports already given are skipped.
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


class Lab:
    """Owns a temp dir and every process started in it."""

    def __init__(self, name="vipproxy-it"):
        # What a run killed outright (SIGKILL: a CTest timeout) left: its
        # processes, its PostgreSQL, its directory.
        labkit.sweep_stale_dirs()
        self.dir = tempfile.mkdtemp(prefix=name + "-")
        os.chmod(self.dir, 0o755)
        labkit.claim_dir(self.dir)
        self.processes = Processes(self.dir)
        self.pg_nodes = []
        self.sockets = []  # closed by close(), after the processes: notify_socket()
        atexit.register(self.close)
        stop_on_signals()

    @property
    def procs(self):
        return self.processes.procs  # (name, Popen)

    def spawn(self, name, argv, stop_signal=signal.SIGTERM, user=None, **kw):
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"] + argv
            # Not from the caller's directory: a checkout in /root (0700) is out of the user's reach.
            kw.setdefault("cwd", self.dir)
        return self.processes.spawn(name, argv, stop_signal=stop_signal, **kw)

    def stop_proc(self, p, sig=signal.SIGTERM, timeout=10):
        stop_process(p, sig, timeout)

    def close(self):
        self.processes.stop_all()
        for node in self.pg_nodes:
            node.stop()
        self.pg_nodes = []
        for s in self.sockets:
            s.close()
        self.sockets = []
        if os.environ.get("VIPPROXY_KEEP_LAB"):
            labkit.release_dir(self.dir)
            log(f"lab kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def logtail(self, name, n=40):
        return self.processes.logtail(name, n)


def _pg_user():
    for u in ("postgres", "nobody"):
        try:
            pwd.getpwnam(u)
            return u
        except KeyError:
            pass
    raise RuntimeError("no postgres user")


class PgNode:
    """One PostgreSQL 15 instance on 127.0.0.1, run as the postgres user."""

    def __init__(self, lab, name, port=None):
        self.lab, self.name = lab, name
        self.port = port or free_port()
        self.datadir = os.path.join(lab.dir, name, "data")
        self.sockdir = os.path.join(lab.dir, name, "run")
        self.user = _pg_user()
        for d in (os.path.join(lab.dir, name), self.sockdir):
            os.makedirs(d, exist_ok=True)
            shutil.chown(d, self.user, self.user)
        self.running = False
        # (PID, start time) of the postmaster this object started: what
        # stop() kills when pg_ctl cannot stop it.
        self.postmaster = None
        self.stop_timeout = 60  # pg_ctl stop -t
        lab.pg_nodes.append(self)

    def _run(self, argv, **kw):
        # cwd: PostgreSQL's tools refuse to start from a directory they cannot
        # enter, e.g. a checkout in /root (0700).
        return subprocess.run(["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups", "--"]
                              + argv, check=True, capture_output=True, text=True, cwd=self.lab.dir, **kw)

    def _conf(self):
        return (f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.sockdir}'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 300\nwal_level = replica\n"
                "max_wal_senders = 10\nhot_standby = on\nshared_buffers = 64MB\n"
                "wal_keep_size = 512MB\nlogging_collector = off\n")

    def initdb(self):
        self._run([f"{PGBIN}/initdb", "-D", self.datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--locale=C"])
        with open(os.path.join(self.datadir, "postgresql.auto.conf"), "a") as f:
            f.write(self._conf())
        with open(os.path.join(self.datadir, "pg_hba.conf"), "a") as f:
            f.write("host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n")

    def basebackup_from(self, primary):
        self._run([f"{PGBIN}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                   "-D", self.datadir, "-R", "-X", "stream", "-c", "fast"])
        with open(os.path.join(self.datadir, "postgresql.auto.conf"), "a") as f:
            f.write(self._conf())

    def start(self):
        self._run([f"{PGBIN}/pg_ctl", "-D", self.datadir, "-l", os.path.join(self.lab.dir, self.name, "postgres.log"),
                   "-w", "-t", "60", "start"])
        self.running = True
        try:
            with open(os.path.join(self.datadir, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            self.postmaster = (pid, labkit.proc_starttime(pid))
        except (OSError, ValueError):
            self.postmaster = None

    def stop(self, mode="fast"):
        if self.running:
            try:
                self._run([f"{PGBIN}/pg_ctl", "-D", self.datadir, "-m", mode, "-w", "-t", str(self.stop_timeout),
                           "stop"])
            except subprocess.CalledProcessError as e:
                log(f"{self.name}: pg_ctl stop failed ({e.returncode}): {e.stderr.strip()}")
            self.running = False
        self._kill_postmaster()

    def _kill_postmaster(self):
        """The postmaster pg_ctl could not stop (hung, stopped, out of reach
        of its pid file): pg_ctl detaches it, so no process record of the lab
        reaches it and it would outlive the test. By the PID recorded at
        start, only while that process is still the one started then (not a
        later one that reused its PID); never by pattern. SIGQUIT is
        PostgreSQL's immediate shutdown (its children go with it), SIGCONT
        for one that was stopped; SIGKILL if it does not end in 10 s."""
        rec, self.postmaster = self.postmaster, None
        if not rec or not labkit.same_process(*rec):
            return
        pid = rec[0]
        log(f"{self.name}: PostgreSQL {pid} still runs after pg_ctl stop: SIGQUIT")
        for sig in (signal.SIGQUIT, signal.SIGCONT):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        if labkit.poll_until(lambda: not labkit.same_process(*rec), 10) is None:
            log(f"{self.name}: PostgreSQL {pid} still runs 10 s after SIGQUIT: SIGKILL")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                return
            if labkit.poll_until(lambda: not labkit.same_process(*rec), 10) is None:
                raise RuntimeError(f"{self.name}: PostgreSQL {pid} survived SIGKILL")

    def promote(self):
        self._run([f"{PGBIN}/pg_ctl", "-D", self.datadir, "-w", "promote"])

    def psql(self, sql, port=None, host="127.0.0.1", timeout=30, extra=()):
        return psql(sql, port or self.port, host=host, timeout=timeout, extra=extra)


def psql(sql, port, host="127.0.0.1", timeout=30, extra=(), check=True):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    r = subprocess.run([f"{PGBIN}/psql", "-X", "-q", "-At", "-h", host, "-p", str(port), "-U", "postgres",
                        "-d", "postgres", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql],
                       capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise RuntimeError(f"psql -p {port} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout.strip() if r.returncode == 0 else None


class Standin:
    """The Patroni REST stand-in of one node; `role` flips it."""

    def __init__(self, lab, name, role="replica", timeline=None):
        """`timeline`: GET /patroni answers Patroni's status with it
        (set_timeline; patroni_standin.py's TIMELINE_FILE)."""
        self.lab, self.name = lab, name
        self.port = free_port()
        self.role_file = os.path.join(lab.dir, name + ".role")
        self.stats_file = os.path.join(lab.dir, name + ".stats.json")
        self.timeline_file = os.path.join(lab.dir, name + ".timeline")
        self.set_role(role)
        extra = []
        if timeline is not None:
            self.set_timeline(timeline)
            extra = [self.timeline_file]
        self.proc = lab.spawn(name + "-rest", [PY, os.path.join(HERE, "patroni_standin.py"), str(self.port),
                                               self.role_file, self.stats_file] + extra)
        wait_until(lambda: os.path.exists(self.stats_file), 10, f"{name} REST stand-in")

    def set_role(self, role):
        tmp = self.role_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(role + "\n")
        os.replace(tmp, self.role_file)

    def set_timeline(self, timeline):
        """A number, or any other text sent as /patroni's whole body."""
        tmp = self.timeline_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(timeline) + "\n")
        os.replace(tmp, self.timeline_file)

    def stats(self):
        with open(self.stats_file) as f:
            return json.load(f)


def status(admin_port):
    """The daemon's /status on 127.0.0.1 (of the caller's namespace)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=5) as r:
        return json.load(r)


def metrics(admin_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
        return r.read().decode()


def echo(port, payload=b"ping", timeout=5, host="127.0.0.1"):
    """Sends `payload` through host:port (an echo backend behind the proxy)
    and returns what came back before `len(payload)` bytes or EOF."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        return echo_on(s, payload)


def echo_on(s, payload=b"ping"):
    """Sends `payload` on the open connection `s` and returns what came back
    before `len(payload)` bytes or EOF."""
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def echo_backend(lab, name="echo", port=None):
    """An echo backend (echo_server.py) on 127.0.0.1:`port` (a free port when
    none is given), spawned in `lab` as `name` (stopped by lab.close()) and
    waited for until it echoes; returns its port."""
    port = port or free_port()
    lab.spawn(name, [PY, os.path.join(HERE, "echo_server.py"), str(port)])
    wait_until(lambda: echo(port) == b"ping", 10, f"echo backend {name} on port {port}")
    return port


def notify_socket(lab, name="notify.sock", blocking=True):
    """A datagram socket bound at lab.dir/`name`, for a daemon's NOTIFY_SOCKET
    (what systemd reads sd_notify messages from); closed by lab.close().
    Returns (path, socket)."""
    path = os.path.join(lab.dir, name)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    lab.sockets.append(sock)
    sock.bind(path)
    sock.setblocking(blocking)
    return path, sock


class Vipproxy:
    def __init__(self, lab, yaml_text, name="vipproxy", binary=None, env=None):
        self.lab, self.name = lab, name
        self.config = os.path.join(lab.dir, name + ".yaml")
        with open(self.config, "w") as f:
            f.write(yaml_text)
        # VIPPROXY_DATA_PATH: the data path every proxy uses (CTest runs the
        # proxy tests once per path).
        path = os.environ.get("VIPPROXY_DATA_PATH")
        self.proc = lab.spawn(name, [binary or VIPPROXY, "--config", self.config] +
                              (["--data-path", path] if path else []),
                              env=dict(os.environ, **(env or {})))

    def require_data_path(self, admin_port):
        """Skips the test class (setUpClass) when VIPPROXY_DATA_PATH=kernel asks for
        the kernel path and this machine's kernel or privileges cannot load it."""
        if os.environ.get("VIPPROXY_DATA_PATH") != "kernel":
            return
        kp = wait_until(lambda: self.status(admin_port).get("kernel_path"), 20, "status")
        if not kp["available"]:
            import unittest
            self.lab.close()
            raise unittest.SkipTest(f"the kernel path is not available here: {kp['why_not']}")

    def status(self, admin_port):
        return status(admin_port)

    def metrics(self, admin_port):
        return metrics(admin_port)

    def alive(self):
        return self.proc.poll() is None

    def log(self, n=60):
        return self.lab.logtail(self.name, n)


def proxy_yaml(name, listen_port, backends, check_ports, admin_port, extra="", check_extra="",
               interval="200ms", rise=1, fall=3, threads=2, check_timeout="2s"):
    """A one-proxy config; backends: [(name, port)], check_ports: per backend.
    A check reply later than the timeout is a failed check, and a backend
    that fails `fall` checks in a row goes down, cutting its sessions; on a
    loaded 2-core CI machine a stand-in's reply once came after 1 s, and with
    `fall: 1` that cut a session a test held (test_reload_drain). Hence
    fall 3 and 2 s here; a 503 (a stand-in set to "replica") still takes a
    backend down at once (down_on_status). A test that measures how fast a
    dead backend is left passes fall=1."""
    lines = [f"node: it", f"threads: {threads}", "admin:", f"  listen: 127.0.0.1:{admin_port}", "proxies:",
             f"  - name: {name}", f"    listen: 127.0.0.1:{listen_port}", "    check:",
             "      type: http", "      path: /primary", f"      interval: {interval}",
             f"      fast_interval: {interval}", f"      timeout: {check_timeout}", f"      rise: {rise}", f"      fall: {fall}"]
    if check_extra:
        lines += ["      " + l for l in check_extra.strip().splitlines()]
    if extra:
        lines += ["    " + l for l in extra.strip().splitlines()]
    lines.append("    backends:")
    for (bname, bport), cport in zip(backends, check_ports):
        lines += [f"      - name: {bname}", f"        address: 127.0.0.1:{bport}", f"        check_port: {cport}"]
    return "\n".join(lines) + "\n"


def pg_pair(lab):
    """A primary (node1) and a streaming replica (node2)."""
    n1, n2 = PgNode(lab, "node1"), PgNode(lab, "node2")
    n1.initdb()
    n1.start()
    n2.basebackup_from(n1)
    n2.start()
    wait_until(lambda: n1.psql("select count(*) from pg_stat_replication where state='streaming'") == "1", 60,
               "replica streaming")
    return n1, n2
