#!/usr/bin/python3
"""tests/integration/thread_trace.py, which splits a daemon's advert silences
between the daemon and the machine in test_flood_netns.py, against threads
whose time is known: a child that sleeps, then spins; the same child held
off its CPU by a SCHED_FIFO hog pinned beside it (waiting for a CPU); and
one hog per CPU above the canaries' priority (every CPU stalled at once).
The hogs need root (SCHED_FIFO): without it the test is skipped. The last
case stalls the whole machine for HOG_ALL seconds, so CTest runs this test
alone (RUN_SERIAL)."""
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import testmain  # noqa: E402
from thread_trace import MachineStalls, ThreadTrace  # noqa: E402

SLEEP, SPIN = 0.3, 0.3
HOG_ALL = 0.15


def child(code):
    return subprocess.Popen([sys.executable, "-c", code])


def hog(cpu, priority, seconds, at=None):
    """A busy loop at SCHED_FIFO `priority` pinned to `cpu` for `seconds`,
    from the time.time() `at` if given (hogs started together begin
    together however long the interpreter took to start on a busy machine)."""
    return child(f"import os, time\nos.sched_setaffinity(0, {{{cpu}}})\n"
                 f"os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param({priority}))\n"
                 f"at = {at!r}\nif at is not None: time.sleep(max(0.0, at - time.time()))\n"
                 f"end = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n")


def stop(p):
    if p.poll() is None:
        p.kill()
    p.wait()


def term(p):
    """As the lab stops a canary: SIGTERM (it writes its record), then wait."""
    if p.poll() is None:
        p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        stop(p)


class ThreadTraceTest(unittest.TestCase):
    def trace(self, p):
        t = ThreadTrace({"child": (p.pid, p.pid)})
        t.start()
        return t

    def test_sleeping_then_running(self):
        # The spin is CPU time, not wall time: on a busy machine (CTest runs
        # this beside a build) the child also waits for a CPU, and that is
        # what the trace must call it.
        p = child(f"import time\ntime.sleep({SLEEP})\nend = time.process_time() + {SPIN}\n"
                  f"while time.process_time() < end: pass\n")
        t = self.trace(p)
        p.wait(30)
        t.stop()
        s = t.samples["child"]
        self.assertGreater(len(s), 20, "too few samples")
        e = t.explain("child", s[0][0], s[-1][0])
        why = ThreadTrace.describe(e)
        asleep = sum(v for k, v in e["asleep"].items() if "nanosleep" in k)
        self.assertGreater(asleep, SLEEP * 0.8, why)
        self.assertGreater(e["running"], SPIN * 0.9, why)
        self.assertLess(e["running"], SPIN + 0.1, why)
        # Every moment is put somewhere, and only once.
        total = e["running"] + e["waiting"] + e["not_run"] + e["cpu_stalled"] + sum(e["asleep"].values())
        self.assertAlmostEqual(total, e["covered"], delta=0.02, msg=why)

    def test_held_off_its_cpu_is_waiting(self):
        if os.geteuid() != 0:
            self.skipTest("SCHED_FIFO needs root")
        cpu = min(os.sched_getaffinity(0))
        p = child(f"import os, time\nos.sched_setaffinity(0, {{{cpu}}})\nend = time.monotonic() + 0.8\n"
                  f"while time.monotonic() < end: pass\n")
        try:
            t = self.trace(p)
            time.sleep(0.1)
            t0 = time.time()
            h = hog(cpu, 40, SPIN)
            h.wait(10)
            t1 = time.time()
            p.wait(10)
            t.stop()
        finally:
            stop(p)
        e = t.explain("child", t0, t1)
        # The hog needs a moment to start: most of its run, not all.
        self.assertGreater(ThreadTrace.machine_share(e), SPIN * 0.6, ThreadTrace.describe(e))
        self.assertLess(e["running"], 0.15, ThreadTrace.describe(e))

    def test_canaries_see_every_cpu_stalled(self):
        if os.geteuid() != 0:
            self.skipTest("SCHED_FIFO needs root")
        with tempfile.TemporaryDirectory() as d:
            procs = []
            stalls = MachineStalls(lambda name, argv: procs.append(subprocess.Popen(argv)) or procs[-1],
                                   term, d, 30)
            try:
                t0 = time.time() + 1.0  # the canaries and hogs started, at their priorities
                hogs = [hog(cpu, 60, HOG_ALL, at=t0) for cpu in sorted(os.sched_getaffinity(0))]
                for h in hogs:
                    h.wait(10)
                t1 = t0 + HOG_ALL
                time.sleep(0.05)
            finally:
                stalls.stop()
            self.assertGreater(stalls.everywhere(t0, t1), HOG_ALL * 0.5, stalls.describe(t0, t1))
            # Outside the hogs' window nothing stalled everywhere.
            self.assertLess(stalls.everywhere(t0 - 0.25, t0 - 0.01), 0.02, stalls.describe(t0 - 0.25, t0 - 0.01))

    def test_asleep_on_a_stalled_cpu_with_work_due(self):
        """Pure: a thread asleep in epoll_wait on CPU 1 from 10.0 to 10.5 s,
        its work due at 10.1 s, CPU 1's canary stalled 10.2-10.4 s: 200 ms
        are the machine's, the rest sleep; nothing before `due` is."""
        t = ThreadTrace({"x": (1, 1)})
        t.samples["x"] = [(10.0 + i * 0.005, "S", 0, 0, "epoll_wait", 1) for i in range(101)]
        m = MachineStalls.__new__(MachineStalls)
        m.cpus, m.stalls = [0, 1], [[], [(10.2, 10.4)]]
        e = t.explain("x", 10.0, 10.5, m, due=10.1)
        self.assertAlmostEqual(e["cpu_stalled"], 0.2, places=3)
        self.assertAlmostEqual(e["asleep"]["epoll_wait"], 0.3, places=3)
        self.assertAlmostEqual(ThreadTrace.machine_share(e), 0.2, places=3)
        e = t.explain("x", 10.0, 10.5, m, due=10.3)
        self.assertAlmostEqual(e["cpu_stalled"], 0.1, places=3)
        self.assertEqual(t.explain("x", 10.0, 10.5)["cpu_stalled"], 0.0)

    def test_everywhere_is_the_intersection(self):
        m = MachineStalls.__new__(MachineStalls)
        m.stalls = [[(10.0, 10.5), (11.0, 11.2)], [(10.3, 11.1)]]
        self.assertAlmostEqual(m.everywhere(0, 20), 0.2 + 0.1)
        self.assertAlmostEqual(m.everywhere(10.4, 11.05), 0.1 + 0.05)
        m.stalls = [[(10.0, 10.5)], None]  # a CPU without a record vouches for nothing
        self.assertEqual(m.everywhere(0, 20), 0.0)


if __name__ == "__main__":
    testmain.main()
