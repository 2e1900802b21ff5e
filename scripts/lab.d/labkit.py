"""Namespaces, processes and waits: what every lab of this repository shares.

Used by the loopback fixtures (tests/integration/lab.py), the namespace lab
of the VRRP and ops tests (tests/integration/netns.py) and the fault
scenarios on the guide's cluster (scripts/lab.d/scenarios.py). Each keeps
its own Lab class, which knows its topology; this module holds what they
did three times: polling with a deadline, starting a process with its own
log file and stopping it by the PID recorded, and network namespaces
created and deleted by the names recorded. Nothing here ever touches a
process or namespace it did not start (no pkill, no patterns).
"""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

# Every lab's addresses are in 10.88.0.0/16; a route to nowhere in the root
# namespace makes sure nothing of a lab ever leaves through a real interface.
LAB_SUBNET = "10.88.0.0/16"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def poll(cond, timeout, interval=0.05, between=None):
    """Polls cond() until it returns something truthy, at most `timeout`
    seconds. Returns (that value, None), or (None, the last exception cond()
    raised, if any) at the deadline: an exception from cond() counts as "not
    yet". `between`, if given, runs after each miss, and what it raises is
    not caught (e.g. a check that the processes waited on are alive)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            v = cond()
            if v:
                return v, None
        except Exception as e:  # noqa: BLE001 - the condition may not be ready yet
            last_error = e
        if time.monotonic() >= deadline:
            return None, last_error
        if between:
            between()
        time.sleep(interval)


def poll_until(cond, timeout, interval=0.05):
    """Polls cond() until it returns something truthy and returns that, or
    returns None once `timeout` seconds have passed. An exception from
    cond() counts as "not yet"."""
    return poll(cond, timeout, interval)[0]


def wait_until(cond, timeout, what, interval=0.05):
    """poll_until, but a timeout is an AssertionError naming `what` (and the
    last error the condition raised)."""
    v, last = poll(cond, timeout, interval)
    if v is None:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}" +
                             (f" (last error: {last})" if last else ""))
    return v


def hold(cond, duration, what, interval=0.05):
    """Asserts cond() stays truthy for `duration` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not cond():
            raise AssertionError(f"{what} stopped holding")
        time.sleep(interval)


def run(argv, check=True, timeout=20, **kw):
    """Runs argv to completion, output captured as text; a non-zero exit is a
    RuntimeError with the command's stderr when `check`."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class stops_deferred:
    """A block in which SIGTERM, SIGHUP and SIGINT are noted, not acted on;
    on leaving it, the handlers in place before get them. For starting a
    child that must be stopped in turn: subprocess.Popen() returns only once
    the child has exec'd, and a stop that raised while it waited (a
    KeyboardInterrupt or Stopped out of Popen()) left a running child nobody
    held (the CI failure of test_lab_stop test_8: the stand-in had written
    its PID and been signalled before its Popen() returned). Only in the main
    thread, where Python runs signal handlers."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def __enter__(self):
        self.pending = []
        self.saved = {}
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self.saved[s] = signal.signal(s, lambda n, f: self.pending.append((n, f)))
        return self

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)
        for n, f in self.pending:
            h = self.saved[n]
            if callable(h):
                h(n, f)  # Stopped or KeyboardInterrupt: raised here, after the block's work is held
            elif h == signal.SIG_DFL:
                signal.raise_signal(n)
        return False


def run_stoppable(argv, timeout=None, stop_timeout=120, **kw):
    """subprocess.run, except when this program is stopped (Stopped, Ctrl-C)
    or the timeout passes while argv runs: subprocess.run SIGKILLs the
    child then, which for a program that cleans up on SIGTERM (`scripts/lab
    up` stops the daemons it started, which are detached and outlive it)
    leaves that work undone. Here the child gets SIGTERM and `stop_timeout`
    seconds to finish its clean-up (SIGKILL after that); then the exception
    goes on. Returns a CompletedProcess."""
    p = None
    try:
        with stops_deferred():
            p = subprocess.Popen(argv, **kw)
        out, err = p.communicate(timeout=timeout)
    except BaseException:
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.communicate(timeout=stop_timeout)  # reading on, so a full pipe cannot hold its clean-up up
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
        raise
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM or SIGHUP (see
    stop_on_signals)."""


def _stopped(signum, _frame):
    raise Stopped(f"stopped by {signal.Signals(signum).name}")


def stop_on_signals():
    """Makes SIGTERM and SIGHUP end this program the way Ctrl-C (SIGINT)
    does: an exception that unwinds to the top and lets the atexit handlers
    run, every lab's close() among them (processes by PID, namespaces by
    name). The default action would kill the program with its namespaces
    left behind, which is what stopping scripts/test did before. A
    KeyboardInterrupt, not SystemExit: unittest records a SystemExit raised
    in a test as that test's error and goes on with the next test, but
    re-raises a KeyboardInterrupt. A handler the program installed itself is
    kept."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _stopped)


def stop_process(p, sig=signal.SIGTERM, timeout=10):
    """Stops a process this program started (a Popen): `sig`, then SIGKILL
    if it has not exited after `timeout` seconds; closes its pipes."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for f in (p.stdin, p.stdout, p.stderr):
        if f is not None:
            try:
                f.close()
            except OSError:
                pass


def proc_starttime(pid):
    """When process `pid` started (field 22 of /proc/PID/stat, clock ticks
    since boot), or None: with the PID, what tells a process from a later
    one that reused its PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def same_process(pid, starttime):
    return starttime is not None and proc_starttime(pid) == starttime


# A lab's temporary directory holds OWNER_FILE ("PID STARTTIME" of the
# program whose lab it is) and PIDS_FILE (one "PID STARTTIME" line per
# process it started), so that what a run killed outright left behind can be
# found and stopped by the next run (sweep_stale_dirs).
OWNER_FILE = ".vipproxy-lab-owner"
PIDS_FILE = ".vipproxy-lab-pids"
STALE_DIR_PREFIX = "vipproxy-"


def claim_dir(directory):
    """Marks `directory` as a lab directory of this program."""
    with open(os.path.join(directory, OWNER_FILE), "w") as f:
        f.write(f"{os.getpid()} {proc_starttime(os.getpid())}\n")


def release_dir(directory):
    """A directory kept on purpose (VIPPROXY_KEEP_LAB) is no lab any more:
    no later sweep removes it."""
    try:
        os.unlink(os.path.join(directory, OWNER_FILE))
    except OSError:
        pass


def _pairs(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                    out.append((int(parts[0]), int(parts[1])))
    except OSError:
        pass
    return out


def _stop_stale_postgres(lab_dir):
    """Stops the PostgreSQL servers of a lab directory whose run is gone
    (sweep_stale_dirs; tests/integration/lab.py's PgNode puts them in
    DIR/NODE/data): pg_ctl detaches the postmaster, so neither a CTest
    timeout (which kills the test's process tree) nor the lab's process
    records reach it. By the PID in each node's postmaster.pid, and only
    while that process is a postgres running on that data directory;
    SIGQUIT is PostgreSQL's immediate shutdown (its children go with it)."""
    try:
        nodes = sorted(os.listdir(lab_dir))
    except OSError:
        return
    for node in nodes:
        datadir = os.path.join(lab_dir, node, "data")
        try:
            with open(os.path.join(datadir, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if not argv[0].endswith(b"postgres") or datadir.encode() not in argv:
            continue
        log(f"stopping PostgreSQL {pid} of a run that is gone ({datadir})")
        try:
            os.kill(pid, signal.SIGQUIT)
        except OSError:  # gone, or not ours to stop (run as another user)
            continue
        if poll_until(lambda: proc_starttime(pid) is None, 10) is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def sweep_stale_dirs(parent=None):
    """Removes the lab directories (PARENT/vipproxy-*, PARENT the temporary
    directory) whose owner (OWNER_FILE) is gone: a test killed with SIGKILL
    (a CTest timeout, the OOM killer) never ran its close(). First the
    processes it recorded (PIDS_FILE) that are still the same processes
    (PID and start time) get SIGKILL, then its PostgreSQL servers, whose
    postmasters pg_ctl detached, are stopped, then the directory goes. A directory without an owner file (kept with
    VIPPROXY_KEEP_LAB, or not a lab's) and one whose owner lives are never
    touched. Returns the paths removed."""
    parent = parent or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        if not e.name.startswith(STALE_DIR_PREFIX):
            continue
        try:
            if not e.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        owner = _pairs(os.path.join(e.path, OWNER_FILE))
        if len(owner) != 1:
            continue
        pid, start = owner[0]
        if pid == os.getpid() or same_process(pid, start):
            continue
        for p, st in _pairs(os.path.join(e.path, PIDS_FILE)):
            if same_process(p, st):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:  # gone, or another user's run (a user cannot stop root's)
                    pass
        _stop_stale_postgres(e.path)
        shutil.rmtree(e.path, ignore_errors=True)
        if not os.path.lexists(e.path):  # another user's, say: not ours to remove
            removed.append(e.path)
    if removed:
        log(f"removed lab directories left by runs that are gone: {', '.join(removed)}")
    return removed


class Processes:
    """Processes started with their output in DIR/NAME.log, recorded as
    (name, Popen) in `procs` (and in DIR/PIDS_FILE, for sweep_stale_dirs)
    and stopped by that record, last first."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = []  # (name, Popen)
        self._signals = {}  # id(Popen) -> the signal that stops it

    def log_path(self, name):
        return os.path.join(self.logdir, name + ".log")

    def spawn(self, name, argv, stop_signal=signal.SIGTERM, banner=False, **kw):
        with open(self.log_path(name), "ab") as logf:
            if banner:
                logf.write(f"---- {time.strftime('%H:%M:%S')} start {' '.join(argv)}\n".encode())
                logf.flush()
            with stops_deferred():  # recorded before a stop can unwind past it
                p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, **kw)
                self.procs.append((name, p))
        try:
            with open(os.path.join(self.logdir, PIDS_FILE), "a") as f:
                f.write(f"{p.pid} {proc_starttime(p.pid)}\n")
        except OSError:
            pass
        self._signals[id(p)] = stop_signal
        return p

    def logtail(self, name, n=40):
        try:
            with open(self.log_path(name), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop_all(self, timeout=10):
        for _, p in reversed(self.procs):
            stop_process(p, self._signals.get(id(p), signal.SIGTERM), timeout)
        self.procs = []
        self._signals = {}


def netns_exec(ns, argv):
    """argv run inside namespace `ns`. `ip netns exec` execs the command, so
    a Popen of this has the program's own PID."""
    return ["ip", "netns", "exec", ns] + list(argv)


def blackhole_lab_subnet():
    """The root namespace's safety net: anything for the lab subnet that
    reached it goes nowhere. First thing a namespace lab does."""
    run(["ip", "route", "replace", "blackhole", LAB_SUBNET])


def netns_pids(name):
    """PIDs of the processes whose network namespace is `name` (`ip netns
    pids` compares /proc/PID/ns/net with /run/netns/NAME): whatever runs in
    one of a lab's namespaces is the lab's, whoever started it."""
    r = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def kill_netns_processes(name, timeout=10):
    """SIGKILLs every process left in namespace `name` (never this program)
    and waits up to `timeout` seconds for them to be gone. What a lab did
    not record ends here: a notify hook's child whose daemon died, a
    keepalived child, a daemon of a run that was killed with SIGKILL. Only
    for a namespace of our own: the namespace, not a name pattern, picks
    the processes."""
    own = os.getpid()

    def left():
        return [p for p in netns_pids(name) if p != own]
    for pid in left():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    # A killed process leaves the namespace when it has exited, a moment
    # after the signal (a zombie is no longer listed).
    poll_until(lambda: not left(), timeout)


def pid_alive(pid):
    """Whether a process with this PID exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def netns_names():
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def sweep_stale_namespaces(pattern, on_delete=None):
    """Deletes the namespaces a run that is gone left behind: those whose
    name matches `pattern` (a compiled regex whose group 1 is the PID of the
    program that made them, e.g. vpt<pid>-br) while no process has that PID
    any more; their processes are killed first. A run killed with SIGKILL
    (a CTest timeout, the OOM killer, kill -9) never reaches its close(),
    and its namespaces would stay forever, daemons and addresses inside.
    Names of a live PID (another test running now) and names of any other
    form are never touched. `on_delete(name)` runs after each deletion (the
    caller's other leftovers, e.g. /etc/netns/NAME). Returns the names
    deleted."""
    gone = []
    for name in netns_names():
        m = pattern.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or pid_alive(pid):
            continue
        kill_netns_processes(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        if on_delete:
            on_delete(name)
        gone.append(name)
    if gone:
        log(f"removed namespaces left by runs that are gone: {', '.join(gone)}")
    return gone


class Namespaces:
    """Network namespaces named PREFIX+short, deleted in delete_all() by the
    names recorded here, newest first, after whatever still runs in them."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.names = []

    def add(self, short):
        name = self.prefix + short
        run(["ip", "netns", "add", name])
        self.names.append(name)
        return name

    def run(self, ns, argv, check=True, timeout=20):
        return run(netns_exec(ns, argv), check=check, timeout=timeout)

    def delete_all(self):
        # Processes first: `ip netns del` only removes the name, and a
        # process still inside keeps the namespace, its addresses and its
        # VRRP going, out of everyone's sight.
        for name in reversed(self.names):
            kill_netns_processes(name)
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.names = []
