"""Where a daemon thread's time went in a window: running, waiting for a
CPU, asleep in a system call, or not run at all.

A timed bound (the master's adverts never pause 150 ms) can be missed for
reasons the daemon owns (a handler that runs long, a call that blocks) and
for reasons it does not: the thread runnable while the scheduler runs
something else, or its vCPU not run by the host (steal, an interrupt held).
The clean-clone CI machine stalled 600-800 ms twice in one run (the
master's adverts in one flood case, the streams and /status in the next),
with nothing to tell which kind it was. This samples one thread every
PERIOD:

  /proc/PID/task/TID/schedstat  ns on a CPU, ns runnable but waiting for one
  /proc/PID/task/TID/stat       state (R, S, D ...) and the CPU it last ran on
  /proc/PID/task/TID/syscall    the system call it sleeps in ("running" if none)

and explain(t1, t2) splits the wall time between two instants (time.time(),
the clock of tcpdump's kernel timestamps) into

  running    on a CPU (schedstat's first field grew)
  waiting    runnable, on a run queue behind other work (second field grew)
  asleep     by the system call it slept in (epoll_wait: the event loop idle)
  not run    state R, but neither field grew: the vCPU under it did not run
             (host steal, interrupts off); the guest scheduler cannot move a
             thread it believes is running
  CPU stalled  asleep with its work due, on a CPU whose canary (below) was
             stalled: the timer's interrupt waits for that CPU to run

`waiting`, `not run` and `CPU stalled` are the machine's share; `running`
and sleeping, in any call (the event loop's wait included: a timer that
fires late is the daemon's), are the daemon's, and so is what cannot be
told (an interval the sampler itself was paused through). The sampler's
own longest pause is reported too: sampling runs in the test process, which
the same stall can stop.

A thread asleep in its event loop's wait looks the same whether its timer
woke it late or the whole virtual machine was not run (the host paused
every vCPU): MachineStalls tells those apart. One process per CPU, pinned
and at SCHED_FIFO (the cyclictest method), sleeps 2 ms at a time and
records every wake-up more than STALL late; a stretch in which every CPU's
canary was late is time in which the machine ran nothing of ours, whatever
the daemon did. A canary is delayed only by interrupts, higher real-time
threads and the host.
"""
import json
import os
import signal
import sys
import threading
import time

# x86_64 numbers of the calls a control thread sleeps in (the rest by number).
SYSCALLS = {0: "read", 1: "write", 7: "poll", 23: "select", 35: "nanosleep", 44: "sendto", 45: "recvfrom",
            46: "sendmsg", 47: "recvmsg", 61: "wait4", 202: "futex", 230: "clock_nanosleep", 232: "epoll_wait",
            257: "openat", 281: "epoll_pwait", 441: "epoll_pwait2"}


def read_sample(pid, tid):
    """(time.time(), state, ns running, ns waiting, syscall name or "running",
    CPU it last ran on), or None once the thread is gone."""
    base = f"/proc/{pid}/task/{tid}"
    try:
        with open(base + "/schedstat") as f:
            run_ns, wait_ns = (int(x) for x in f.read().split()[:2])
        with open(base + "/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        state, cpu = fields[0], int(fields[36])  # fields 3 and 39 of proc(5)
        with open(base + "/syscall") as f:
            word = f.read().split()[0]
    except (OSError, IndexError, ValueError):
        return None
    call = word if not word.lstrip("-").isdigit() else SYSCALLS.get(int(word), f"syscall {word}")
    return time.time(), state, run_ns, wait_ns, call, cpu


class ThreadTrace(threading.Thread):
    """Samples threads {name: (pid, tid)} every PERIOD until stop()."""
    PERIOD = 0.005

    def __init__(self, threads):
        super().__init__(daemon=True)
        self.threads = dict(threads)
        self.samples = {name: [] for name in self.threads}
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for name, (pid, tid) in self.threads.items():
                s = read_sample(pid, tid)
                if s is not None:
                    self.samples[name].append(s)
            time.sleep(self.PERIOD)

    def stop(self):
        self.halt.set()
        self.join(5)
        return self

    def explain(self, name, t1, t2, stalls=None, due=None):
        """{running, waiting, not_run, cpu_stalled, asleep: {call: s}, covered,
        sampler_pause} (seconds) of `name` over [t1, t2].

        With `stalls` (MachineStalls), time asleep after `due` (when the
        thread had work: its timer expired) during which the CPU it last ran
        on was stalled is `cpu_stalled`, not sleep: a timer's interrupt comes
        on the CPU that armed it, and a vCPU the host does not run takes none.
        The samples that bracket the window are used (the last at or before
        t1 to the first at or after t2), since a stall that stops the daemon
        can stop this sampler too; an interval that reaches outside the
        window counts for the part inside it, in proportion. `covered` is
        how much of the window the samples span, `sampler_pause` the longest
        interval between two of them."""
        samples = self.samples[name]
        lo = max((i for i, s in enumerate(samples) if s[0] <= t1), default=0)
        hi = min((i for i, s in enumerate(samples) if s[0] >= t2), default=len(samples) - 1)
        out = {"running": 0.0, "waiting": 0.0, "not_run": 0.0, "cpu_stalled": 0.0, "asleep": {}, "covered": 0.0,
               "sampler_pause": 0.0}
        rests = {}  # where each interval's time off the CPU and off the run queue went
        # schedstat's two counters lag: run time is brought up to date at
        # ticks and switches, wait time only when the thread gets a CPU (a
        # thread queued 100 ms shows no wait until it runs). An interval
        # before such an update shows a rest that is not one, and the
        # interval of the update more than its wall time. That excess goes
        # back to the rests just before it, latest first (`recent`), instead
        # of being dropped: dropped, the false rests of a thread queued
        # behind a busy machine were counted as "not run" and, shared out
        # below, took their part of its real sleep (test_thread_trace,
        # test_sleeping_then_running: asleep 233 of 300 ms, not run 51 ms, in
        # a CI run beside a build).
        recent = []  # [key, amount] of the rests counted so far, in order
        for a, b in zip(samples[lo:hi], samples[lo + 1:hi + 1]):
            wall = b[0] - a[0]
            inside = min(b[0], t2) - max(a[0], t1)
            if wall <= 0 or inside <= 0:
                continue
            share = inside / wall
            ran, waited = (b[2] - a[2]) / 1e9, (b[3] - a[3]) / 1e9
            excess = max(0.0, ran + waited - wall) * share
            while excess > 0 and recent:
                key, amount = recent[-1]
                take = min(amount, excess)
                rests[key] -= take
                excess -= take
                if take == amount:
                    recent.pop()
                else:
                    recent[-1][1] -= take
            rest = max(0.0, wall - ran - waited) * share
            out["running"] += ran * share
            out["waiting"] += waited * share
            out["covered"] += inside
            out["sampler_pause"] = max(out["sampler_pause"], wall)
            # Runnable at both ends, yet neither on a CPU nor counted as
            # waiting for one: not run. Otherwise the rest was spent asleep,
            # in the call it slept in at either end. Over a long interval the
            # states at its ends say little, and what is not known is counted
            # as the daemon's.
            if wall > 4 * self.PERIOD:
                call = "unknown (sampler paused)"
            elif a[1] == "R" and b[1] == "R":
                rests["not_run"] = rests.get("not_run", 0.0) + rest
                recent.append(["not_run", rest])
                continue
            else:
                sleeper = b if b[1] != "R" else a
                call = sleeper[4] if sleeper[4] != "running" else f"no call (state {sleeper[1]})"
            if stalls is not None and due is not None:
                stalled = min(rest, stalls.on_cpu(a[5], max(a[0], t1, due), min(b[0], t2)))
                rests["cpu_stalled"] = rests.get("cpu_stalled", 0.0) + stalled
                recent.append(["cpu_stalled", stalled])
                rest -= stalled
            rests[("asleep", call)] = rests.get(("asleep", call), 0.0) + rest
            recent.append([("asleep", call), rest])
        # The run time of a thread on a CPU is brought up to date at ticks,
        # so one interval shows too little and the next too much: summed
        # over the window that evens out, interval by interval it does not.
        # What is left of the window once running and waiting are counted
        # whole is shared out in proportion to the intervals' rests.
        left = max(0.0, out["covered"] - out["running"] - out["waiting"])
        scale = left / sum(rests.values()) if sum(rests.values()) > 0 else 0.0
        for k, v in rests.items():
            if isinstance(k, tuple):
                out["asleep"][k[1]] = v * scale
            else:
                out[k] = v * scale
        return out

    @staticmethod
    def machine_share(e):
        """Seconds of the window the machine, not the daemon, kept the thread
        from running: waiting for a CPU, its vCPU not run, or (asleep, with
        work due) its CPU stalled."""
        return e["waiting"] + e["not_run"] + e["cpu_stalled"]

    @staticmethod
    def describe(e):
        ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
        asleep = ", ".join(f"{k} {ms(v)}" for k, v in sorted(e["asleep"].items(), key=lambda kv: -kv[1]) if v >= 0.001)
        return (f"running {ms(e['running'])}, waiting for a CPU {ms(e['waiting'])}, not run while runnable "
                f"{ms(e['not_run'])}, its CPU stalled with work due {ms(e['cpu_stalled'])}, "
                f"asleep in {asleep or 'nothing'} (samples cover {ms(e['covered'])}, "
                f"longest between two {ms(e['sampler_pause'])})")


class MachineStalls:
    """Canary processes, one per CPU, for `seconds` at most (stop() ends them
    sooner). Started through `spawn(name, argv)`, which records the process
    so the lab stops it whatever happens; `stop_process(p)` ends one."""
    STALL = 0.010

    def __init__(self, spawn, stop_process, workdir, seconds):
        self.stop_process = stop_process
        self.procs, self.paths = [], []
        self.cpus = sorted(os.sched_getaffinity(0))
        for cpu in self.cpus:
            path = os.path.join(workdir, f"canary-{cpu}.json")
            if os.path.exists(path):
                os.unlink(path)  # an earlier instance's record must not stand in for this one's
            self.paths.append(path)
            self.procs.append(spawn(f"canary-{cpu}", [sys.executable, os.path.abspath(__file__), "--canary",
                                                      str(cpu), path, str(seconds)]))
        self.stalls = []  # per CPU: [(start, end)] in time.time()

    @classmethod
    def in_lab(cls, lab, seconds):
        """Canaries recorded by a netns.Lab (its log directory, its process
        list, which stops them if the test does not)."""
        return cls(lambda name, argv: lab.processes.spawn(name, argv), lab.stop, lab.dir, seconds)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        for p in self.procs:
            self.stop_process(p)
        self.stalls = []
        for path in self.paths:
            try:
                with open(path) as f:
                    self.stalls.append([tuple(x) for x in json.load(f)])
            except (OSError, ValueError):
                self.stalls.append(None)  # no record: that CPU cannot vouch for anything
        return self

    def everywhere(self, t1, t2):
        """Seconds of [t1, t2] in which every CPU's canary was stalled."""
        if not self.stalls or any(s is None for s in self.stalls):
            return 0.0
        common = [(t1, t2)]
        for stalls in self.stalls:
            common = [(max(a, c), min(b, d)) for a, b in common for c, d in stalls if min(b, d) > max(a, c)]
        return sum(b - a for a, b in common)

    def on_cpu(self, cpu, t1, t2):
        """Seconds of [t1, t2] in which `cpu`'s canary was stalled."""
        if cpu not in self.cpus or len(self.stalls) != len(self.cpus) or self.stalls[self.cpus.index(cpu)] is None:
            return 0.0
        return sum(max(0.0, min(b, t2) - max(a, t1)) for a, b in self.stalls[self.cpus.index(cpu)])

    def describe(self, t1, t2):
        parts = []
        for cpu, stalls in zip(self.cpus, self.stalls):
            if stalls is None:
                parts.append(f"CPU {cpu} no record")
                continue
            inside = [(a, b) for a, b in stalls if b > t1 and a < t2]
            longest = max((b - a for a, b in inside), default=0.0)
            parts.append(f"CPU {cpu} {len(inside)} stalls, longest {longest * 1000:.0f} ms")
        return f"canaries in that window: {', '.join(parts) or 'none'}; all stalled at once " \
               f"{self.everywhere(t1, t2) * 1000:.0f} ms"


def canary(cpu, path, seconds):
    """The canary process: wake every 2 ms on `cpu`, write the late wake-ups."""
    os.sched_setaffinity(0, {cpu})
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
    done = []
    signal.signal(signal.SIGTERM, lambda *_: done.append(1))
    stalls, period = [], 0.002
    end = time.monotonic() + seconds
    while not done and time.monotonic() < end:
        t0, w0 = time.monotonic(), time.time()
        time.sleep(period)
        late = time.monotonic() - t0 - period
        if late > MachineStalls.STALL:
            stalls.append((w0 + period, w0 + period + late))
    with open(path + ".tmp", "w") as f:
        json.dump(stalls, f)
    os.rename(path + ".tmp", path)


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--canary":
    canary(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
