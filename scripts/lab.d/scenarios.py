#!/usr/bin/python3
"""Fault scenarios on the namespace lab, measured from the client's side.
Used by scripts/demo and tests/e2e/ (import this file; it runs nothing on import).

Every client (writer.py, probe.py, watch.py) runs inside vl-dirtoha through
`scripts/lab exec`; faults are injected by recorded PID (status --json,
postmaster.pid) or by downing a node's switch port inside vl-br. Nothing here
touches the root namespace's network, and every process started here is
stopped by its PID.
"""
import json
import os
import signal
import subprocess
import threading
import time

import labkit

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
LAB = os.path.join(REPO, "scripts", "lab")
PY = "/usr/bin/python3"
PSQL = "/usr/lib/postgresql/15/bin/psql"
VIP = "10.88.1.160"
CATALOGS = {"catalog01": "10.88.1.151", "catalog02": "10.88.1.152"}
BY_ADDR = {v: k for k, v in CATALOGS.items()}
# The hosts that can run an etcd member, in the order scripts/lab gives them one (lab.py HOSTS).
ETCD_HOSTS = dict(CATALOGS, dirtoha="10.88.1.180")


def etcd_says_healthy(answer):
    """Whether an etcd member's /health answer (Lab.etcd_health()) says healthy."""
    try:
        return json.loads(answer).get("health") == "true"
    except (ValueError, AttributeError):
        return False


def node_of(addr):
    return BY_ADDR.get((addr or "").split("/")[0], addr)


class LabError(Exception):
    pass


class Timeline:
    """Events on CLOCK_MONOTONIC (shared by every process of the machine)."""

    def __init__(self, echo=True):
        self.t0 = time.monotonic()
        self.events = []
        self.echo = echo
        self.lock = threading.Lock()

    def add(self, what, at=None):
        at = time.monotonic() if at is None else at
        with self.lock:
            self.events.append((at, what))
        if self.echo:
            print(f"  {at - self.t0:7.2f}s  {what}", flush=True)


class Lab:
    def __init__(self, state_dir=None, echo=True):
        self.state_dir = state_dir or os.environ.get("VIPPROXY_LAB_STATE", "/run/vipproxy-lab")
        self.echo = echo
        self.children = []
        self._etcd_members = None

    # ---- lifecycle
    def _lab(self, *args, timeout=300, capture=False):
        argv = [LAB, args[0], *args[1:], "--state-dir", self.state_dir] if args[0] != "exec" else \
            [LAB, "exec", "--state-dir", self.state_dir, *args[1:]]
        kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} if capture or not self.echo else {}
        # Stopped meanwhile, `scripts/lab up` gets SIGTERM and time to stop
        # what it started, never SIGKILL (labkit.run_stoppable).
        return labkit.run_stoppable(argv, text=True, timeout=timeout, **kw)

    def up(self, *opts, keep=False):
        # --owner-pid: this program takes the lab down (down()); if it is
        # killed before it can, the next `up` does (scripts/lab.d/lab.py).
        # A lab to be kept (scripts/demo --keep) has no owner: it stays
        # until someone runs `scripts/lab down`.
        owner = [] if keep else ["--owner-pid", str(os.getpid())]
        r = self._lab("up", *opts, *owner, timeout=400, capture=not self.echo)
        if r.returncode != 0:
            raise LabError(f"scripts/lab up {' '.join(opts)} failed" + (f":\n{r.stdout}{r.stderr}" if
                                                                      not self.echo else ""))

    def down(self):
        for p in self.children:
            self.stop_child(p)
        return self._lab("down", timeout=300, capture=not self.echo).returncode

    def status(self):
        r = self._lab("status", "--json", timeout=60, capture=True)
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise LabError(f"status --json: {r.stdout}{r.stderr}")

    def path(self, *parts):
        return os.path.join(self.state_dir, *parts)

    # ---- commands inside the namespaces
    def exec_argv(self, node, argv):
        return [LAB, "exec", "--state-dir", self.state_dir, node] + list(argv)

    def run(self, node, argv, timeout=60):
        return subprocess.run(self.exec_argv(node, argv), text=True, capture_output=True, timeout=timeout)

    def spawn(self, node, argv, **kw):
        # scripts/lab exec -> ip netns exec -> the program: all exec, so the PID is the program's.
        with labkit.stops_deferred():  # held before a stop can unwind past it
            p = subprocess.Popen(self.exec_argv(node, argv), text=True, start_new_session=True, **kw)
            self.children.append(p)
        return p

    def stop_child(self, p, sig=signal.SIGTERM, timeout=10):
        labkit.stop_process(p, sig, timeout)
        if p in self.children:
            self.children.remove(p)

    def psql(self, sql, host=VIP, port=5433, node="dirtoha", timeout=20):
        """Runs sql from a node (default the Director host) through host:port; stdout or None."""
        r = self.run(node, ["env", "PGCONNECT_TIMEOUT=3", PSQL, "-X", "-At", "-h", host, "-p", str(port),
                            "-U", "postgres", "-d", "postgres", "-c", sql], timeout=timeout)
        return r.stdout.strip() if r.returncode == 0 else None

    # ---- state
    def vip_holders(self):
        holders = []
        for h in CATALOGS:
            r = subprocess.run(["ip", "-n", "vl-" + h, "-4", "-o", "addr", "show", "dev", "eth0"], text=True,
                               capture_output=True)
            if f" {VIP}/" in r.stdout:
                holders.append(h)
        return holders

    def primaries(self):
        """Nodes whose Patroni answers 200 on /primary (asked from dirtoha)."""
        out = []
        for h, a in CATALOGS.items():
            r = self.run("dirtoha", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1",
                                     f"http://{a}:8008/primary"], timeout=10)
            if r.stdout.strip() == "200":
                out.append(h)
        return out

    def streaming(self, leader, sync=False):
        rows = self.psql("select application_name from pg_stat_replication where state = 'streaming'"
                         + (" and sync_state = 'sync'" if sync else ""), host=CATALOGS[leader], port=5432)
        return set((rows or "").split())

    def etcd_health(self):
        """{member: its /health answer, or why there is none}, asked from
        dirtoha, for the lab's etcd members."""
        if self._etcd_members is None:
            self._etcd_members = list(ETCD_HOSTS)[:int(self.status().get("etcd_members") or 0)]
        out = {}
        for h in self._etcd_members:
            r = self.run("dirtoha", ["curl", "-s", "-m", "1", f"http://{ETCD_HOSTS[h]}:2379/health"], timeout=10)
            out[h] = r.stdout.strip() or f"no answer (curl exit {r.returncode})"
        return out

    def etcd_unhealthy(self):
        """The etcd members that do not say they are healthy (no leader, not
        reachable...): [] when every one does."""
        return [h for h, answer in self.etcd_health().items() if not etcd_says_healthy(answer)]

    def wait_steady(self, timeout=120, sync=False, vip_stable=5.0, etcd=False):
        """One primary, the other node streaming (sync if asked), the VIP on
        exactly one node and staying there for vip_stable seconds (after a
        role change the VIP may move, e.g. preempted back to the higher
        priority); with etcd=True also every etcd member healthy, so that a
        scenario that takes one node away starts with a quorum that survives
        it (a member partitioned by the scenario before may still be
        rejoining)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if etcd:
                bad = self.etcd_unhealthy()
                if bad:
                    last = f"etcd members not healthy: {bad}"
                    time.sleep(0.5)
                    continue
            prim = self.primaries()
            if len(prim) == 1:
                other = [h for h in CATALOGS if h != prim[0]]
                holders = self.vip_holders()
                if set(other) <= self.streaming(prim[0], sync) and len(holders) == 1:
                    until = time.monotonic() + vip_stable
                    while time.monotonic() < until and self.vip_holders() == holders:
                        time.sleep(0.25)
                    if self.vip_holders() == holders and self.primaries() == prim:
                        return prim[0], holders[0]
                    last = f"VIP moved from {holders} to {self.vip_holders()}"
                    continue
                last = f"primary {prim[0]}, streaming {self.streaming(prim[0], sync) or 'none'}, VIP on {holders}"
            else:
                last = f"primaries {prim}"
            time.sleep(0.5)
        raise LabError(f"no steady state after {timeout}s ({last})")

    def leader_pid(self, node):
        with open(self.path(node, "pg", "data", "postmaster.pid")) as f:
            return int(f.readline())

    def proc_pid(self, name):
        """PID of a daemon the lab recorded (STATE/pids/NAME.pid: "PID STARTTIME"), if it still runs."""
        try:
            with open(self.path("pids", name + ".pid")) as f:
                pid, start = (int(x) for x in f.read().split())
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[19]) == start:
                    return pid
        except (OSError, ValueError, IndexError):
            pass
        raise LabError(f"{name} is not running")

    def link(self, node, up):
        subprocess.run(["ip", "-n", "vl-br", "link", "set", "v-" + node, "up" if up else "down"], check=True)

    def sessions_on(self, node, timeout=30):
        """Client sessions of the lab's clients on a node's PostgreSQL (asked on the node itself).
        A demoted primary restarts as a replica after a switchover: wait (up to `timeout`) until
        it answers; None if it never does."""
        def count():
            r = self.run(node, ["env", "PGCONNECT_TIMEOUT=3", PSQL, "-X", "-At", "-h",
                                self.path(node, "pg", "run"), "-U", "postgres", "-d", "postgres", "-c",
                                "select count(*) from pg_stat_activity where application_name in "
                                "('lab-writer', 'lab-probe')"], timeout=20)
            ok = r.returncode == 0 and r.stdout.strip().isdigit()
            return (int(r.stdout.strip()),) if ok else None  # a tuple: 0 sessions is an answer

        answer = labkit.poll_until(count, timeout, interval=0.5)
        return answer[0] if answer else None

    # ---- faults
    def switchover(self, leader, candidate):
        """patronictl switchover --force; returns its last meaningful output line."""
        r = self.run(leader, ["patronictl", "-c", self.path(leader, "patroni.yml"), "switchover", "--force",
                                 "--master", leader, "--candidate", candidate], timeout=90)
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip() and not ln.startswith(("+", "|"))]
        return (lines[-1] if lines else f"exit {r.returncode}").strip()

    def crash_postmaster(self, node):
        pid = self.leader_pid(node)
        os.kill(pid, signal.SIGKILL)
        return pid


class Measure:
    """A writer (and an idle old session) around one fault."""

    def __init__(self, lab, timeline, table, probe=True):
        self.lab, self.tl, self.table = lab, timeline, table
        self.writer = self.probe = None
        self.want_probe = probe
        self.ready = threading.Event()
        self.probe_ready = threading.Event()
        self.outage_ends = []
        self.first_errors = []
        self.probe_cut = None

    def _follow(self, stream, who, ready):
        for line in stream:
            line = line.rstrip("\n")
            mono, _, text = line.partition(" ")
            try:
                at = float(mono)
            except ValueError:
                continue
            if text.startswith("ready"):
                self.tl.add(f"{who}: connected, first write on {node_of(text.split()[-1])}"
                            if who == "writer" else f"{who}: old session open on {node_of(text.split()[-1])}", at)
                ready.set()
            elif text.startswith("outage"):
                self.outage_ends.append(at)
                self.tl.add(f"{who}: writes again: {text}", at)
            elif text.startswith("error"):
                self.first_errors.append(at)
                self.tl.add(f"{who}: {text.split(': ', 1)[-1]}", at)
            elif "closed under us" in text:
                self.probe_cut = at
                self.tl.add(f"{who}: connection closed under the idle session (FIN/RST)", at)

    def start(self):
        self.writer = self.lab.spawn("dirtoha", [PY, os.path.join(HERE, "writer.py"), "--duration", "900",
                                                 "--table", self.table],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=self._follow, args=(self.writer.stderr, "writer", self.ready), daemon=True).start()
        if self.want_probe:
            self.probe = self.lab.spawn("dirtoha", [PY, os.path.join(HERE, "probe.py")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            threading.Thread(target=self._follow, args=(self.probe.stderr, "old session", self.probe_ready),
                             daemon=True).start()
        if not self.ready.wait(30) or (self.probe and not self.probe_ready.wait(30)):
            raise LabError("the writer or the probe did not connect through the VIP")
        time.sleep(1.5)

    def wait_resumed(self, after, timeout):
        """Waits for the writer's first outage ending after `after`; returns True if writes resumed."""
        def resumed():
            if any(t > after for t in self.outage_ends):
                return "resumed"
            return "writer exited" if self.writer.poll() is not None else None

        return labkit.poll_until(resumed, timeout, interval=0.1) == "resumed"

    def stop(self):
        probe = None
        if self.probe:
            try:
                self.probe.stdin.write("go\n")
                self.probe.stdin.flush()
                out = self.probe.stdout.readline()
                probe = json.loads(out) if out.strip() else None
            except (OSError, ValueError):
                probe = None
            self.lab.stop_child(self.probe)
        if self.writer.poll() is None:
            os.kill(self.writer.pid, signal.SIGTERM)
        out = self.writer.stdout.read()  # its one JSON line, then EOF when it exits
        self.lab.stop_child(self.writer)
        try:
            w = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise LabError(f"writer gave no result: {out!r}")
        return w, probe


def run_scenario(lab, tl, name, table, fault, resume_timeout=120, settle=2.0, probe=True, restore=None,
                 check=None):
    """Measures one fault: returns a result dict (see table()). `check()` runs
    after writes resumed, while the clients are still connected."""
    m = Measure(lab, tl, table, probe=probe)
    tl.add(f"--- {name}")
    m.start()
    t_fault = time.monotonic()
    tl.add(f"fault: {name.split('. ', 1)[-1]}", t_fault)
    detail = fault()
    tl.add(f"  ({detail})")
    resumed = m.wait_resumed(t_fault, resume_timeout)
    if resumed:
        tl.add("writes resumed")
    else:
        tl.add(f"writes did NOT resume within {resume_timeout}s")
    time.sleep(settle)
    checked = check() if check and resumed else None
    w, p = m.stop()
    res = {"name": name, "fault_at": t_fault, "resumed": resumed, "writer": w, "probe": p, "check": checked}
    # Outage: the writer's outages that overlap the fault (start = last good write before it).
    outs = [o for o in w["outages"] if w["t0"] + o["start"] >= t_fault - 1.0]
    res["outages"] = outs
    res["outage"] = sum(o["seconds"] for o in outs if o["seconds"] is not None) if resumed else None
    res["read_only_errors"] = sum(n for k, n in w["error_kinds"].items() if "read-only" in k)
    res["error_kinds"] = w["error_kinds"]
    res["ended_on"] = node_of(w.get("last_server"))
    res["probe_cut_after"] = (round(p["cut_at"] - t_fault, 3) if p and p.get("cut_at") else None)
    # Acknowledged writes missing on the final primary (read through the VIP).
    rows = None
    for _ in range(5 if resumed else 0):
        rows = lab.psql(f"select n from {table}")
        if rows is not None:
            break
        time.sleep(1)
    if rows is None:
        res["missing"] = None
    else:
        present = set(int(x) for x in rows.split())
        res["missing"] = sorted(set(w["acked"]) - present)
    res["acked"] = len(w["acked"])
    res["acked_values"] = w["acked"]
    res["table"] = table
    if restore:
        restore()
    return res


def missing_now(lab, res):
    """Acknowledged writes of a finished scenario that the primary no longer
    has now (e.g. after the node cut off by the fault came back: Patroni
    3.0.2's etcd3 update_leader can overwrite a newer leader key when the old
    leader rejoins, patroni#2689, and the writes taken meanwhile are lost).
    None if the table cannot be read."""
    rows = lab.psql(f"select n from {res['table']}")
    if rows is None:
        return None
    present = set(int(x) for x in rows.split())
    return sorted(set(res["acked_values"]) - present)


def patroni_defects(lab):
    """What `vipproxy doctor` says about the lab's Patroni versions against the
    known defects that lose acknowledged writes (the one table:
    health/patroni_defects.cpp), with the DCS from the lab's patroni.yml.
    Lines "catalog01, catalog02: <reason>", one per distinct reason; [] if
    doctor could not run. Works with either frontend: doctor gets a config of
    its own listing both nodes (it binds nothing)."""
    try:
        with open(lab.path("state.json")) as f:
            binary = json.load(f)["vipproxy_bin"]
    except (OSError, ValueError, KeyError):
        return []
    cfg = lab.path("doctor-patroni.yaml")
    with open(cfg, "w") as f:
        f.write("# scripts/demo: for `vipproxy doctor` only (its Patroni checks)\nproxies:\n  - name: postgres\n"
                "    listen: 127.0.0.1:5433\n    check: {type: http, port: 8008, path: /primary}\n    backends:\n"
                + "".join(f"      - {{name: {h}, address: '{a}:5432'}}\n" for h, a in CATALOGS.items()))
    try:
        r = lab.run("dirtoha", [binary, "doctor", "--config", cfg, "--no-adverts", "--patroni-config",
                                lab.path("catalog01", "patroni.yml")], timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    by_reason = {}
    for line in r.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] == "patroni" and ": " in parts[2]:
            who, reason = parts[2].split(": ", 1)
            by_reason.setdefault(f"{parts[0]} {reason}", []).append(who.split("/")[-1])
    lines = [f"{', '.join(nodes)}: {reason}" for reason, nodes in by_reason.items()]
    # A node a scenario left cut off says nothing about versions: show it only if nothing else answered.
    known = [ln for ln in lines if "version unknown" not in ln]
    return known or lines


def describe_probe(p):
    if not p:
        return "no answer"
    if p["result"] == "connection":
        return "cut (connection error)"
    if p["result"] == "read-only":
        return "NOT cut: read-only error"
    if p["result"] == "ok":
        return "kept (still on the primary)"
    return f"{p['result']}: {p['error']}"


def table(res):
    """A small per-scenario table, as lines."""
    p = res["probe"]
    rows = [
        ("client-visible outage", f"{res['outage']:.2f} s" if res["outage"] is not None else "writes did not resume"),
        ("outages seen", ", ".join(f"{o['seconds']}s {node_of(o['from'])}->{node_of(o['to'])}"
                                   for o in res["outages"]) or "none"),
        ("acknowledged writes", str(res["acked"])),
        ("acknowledged writes missing", "unknown" if res["missing"] is None else
         (str(len(res["missing"])) + (f" {res['missing'][:10]}" if res["missing"] else ""))),
        ("client ended up on", res["ended_on"] or "-"),
        ("read-only errors seen by the writer", str(res["read_only_errors"])),
        ("old idle session", describe_probe(p) + (f", closed {res['probe_cut_after']:.2f} s after the fault"
                                                  if res["probe_cut_after"] is not None else "")),
        ("writer errors", "; ".join(f"{n}x {k[:70]}" for k, n in res["error_kinds"].items()) or "none"),
    ]
    w = max(len(k) for k, _ in rows)
    return [f"    {k:<{w}}  {v}" for k, v in rows]


class VipWatch(threading.Thread):
    """Samples which node holds the VIP (every `period` s) for the demo's
    picture; records (monotonic time, [holders]) on every change."""

    def __init__(self, lab, period=0.2):
        super().__init__(daemon=True)
        self.lab, self.period = lab, period
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        last = None
        while not self.halt.is_set():
            t = time.monotonic()
            try:
                holders = self.lab.vip_holders()
            except (OSError, subprocess.SubprocessError):
                holders = None
            if holders is not None and holders != last:
                self.samples.append((t, holders))
                last = holders
            self.halt.wait(self.period)

    def stop(self):
        self.halt.set()
        self.join(5)
        return self.samples


def demo_record(frontend, t0, end, results, vip_samples, events, title="", started=""):
    """The run record scripts/lab.d/timeline_plot.py draws (its docstring
    says the format), from run_scenario() results, VipWatch samples and
    Timeline events; every time becomes seconds since t0. Pure."""
    rel = lambda t: round(t - t0, 3)  # noqa: E731
    acks, scenarios = {}, []
    for r in results:
        w = r.get("writer") or {}
        wt0 = w.get("t0")
        sc = {"name": r["name"], "fault": rel(r["fault_at"]), "outage_s": r.get("outage"),
              "missing": None if r.get("missing") is None else len(r["missing"]), "outages": []}
        if "missing_after_rejoin" in r:
            later = r["missing_after_rejoin"]
            sc["missing_after_rejoin"] = None if later is None else len(later)
        if wt0 is not None:
            if w.get("t_end") is not None:
                sc["writer"] = [rel(wt0), rel(wt0 + w["t_end"])]
            for server, times in (w.get("acks_by_server") or {}).items():
                acks.setdefault(node_of(server), []).extend(rel(wt0 + t) for t in times)
            for o in r.get("outages", []):
                start = wt0 + o["start"]
                sc["outages"].append([rel(start), None if o["seconds"] is None else rel(start + o["seconds"])])
        scenarios.append(sc)
    for times in acks.values():
        times.sort()
    # The holder at t0 is the last change before it.
    before = [h for t, h in vip_samples if t < t0]
    vip = ([[0.0, list(before[-1])]] if before else []) + [[rel(t), list(h)] for t, h in vip_samples if t >= t0]
    return {"version": 1, "frontend": frontend, "title": title, "started": started, "end": rel(end),
            "scenarios": scenarios, "acks": acks, "vip": vip,
            "events": [[rel(t), what] for t, what in events if t >= t0]}
