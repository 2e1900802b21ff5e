"""Sees a vCPU of a virtual machine stop running anything for a while.

Each CPU's line in /proc/stat adds up to the wall time that passed, busy or
idle: ticks count busy time, and an idle CPU's tickless sleep is counted as
idle from timestamps (NO_HZ_IDLE). The sum falls behind the wall clock only
while the vCPU takes no timer interrupts: the host does not run it (and does
not report that time as steal), or it is held with interrupts off, as in an
emulated device's interrupt handler. On the development VM (Firecracker, a
PVM guest, 2 vCPUs) one vCPU took ~1 timer interrupt per 100 ms instead of
~28 for 0.1-8 s at a time, while the thread current on it kept being charged
run time: a daemon thread there stops for seconds and no scheduler inside
the guest can move it, as it is "running". The cause was console output:
keepalived, with no syslog daemon in the lab, logged each line to
/dev/console, the VM's emulated serial port, whose interrupt is served on
that vCPU (docs/lab-notes.md, "The console is a serial port"). A test that
asserts real-time bounds logs what this sees, so the next such stall is told
from a fault of the code under test at once.
"""
import os
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")  # /proc/stat's unit, USER_HZ


def cpu_times():
    """{cpu index: accounted seconds} from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                fields = line.split()
                # user nice system idle iowait irq softirq steal
                out[int(fields[0][3:])] = sum(int(x) for x in fields[1:9]) / CLK_TCK
    return out


class VcpuWatch(threading.Thread):
    """Samples every PERIOD; freezes() lists the intervals of at least
    MIN_FREEZE in which a CPU accounted less than SHARE of the wall time."""
    PERIOD, SHARE, MIN_FREEZE = 0.05, 0.3, 0.1

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.samples.append((time.monotonic(), time.time(), cpu_times()))
            time.sleep(self.PERIOD)

    def stop(self):
        self.halt.set()
        self.join(5)
        return self.freezes()

    def freezes(self):
        """[(cpu, wall-clock start, seconds, accounted share)], longest first."""
        out = []
        cpus = self.samples[0][2].keys() if self.samples else ()
        for cpu in cpus:
            start = None
            for (t0, w0, c0), (t1, _, c1) in zip(self.samples, self.samples[1:]):
                frozen = c1[cpu] - c0[cpu] < self.SHARE * (t1 - t0)
                if frozen and start is None:
                    start = (t0, w0, c0[cpu])
                if not frozen and start is not None:
                    self._close(out, cpu, start, t0, c0[cpu])
                    start = None
            if start is not None:
                t, _, c = self.samples[-1]
                self._close(out, cpu, start, t, c[cpu])
        return sorted(out, key=lambda f: -f[2])

    def _close(self, out, cpu, start, t_end, c_end):
        t0, w0, c0 = start
        if t_end - t0 >= self.MIN_FREEZE:
            out.append((cpu, w0, t_end - t0, (c_end - c0) / (t_end - t0)))


def stamp(wall):
    """HH:MM:SS.mmm of a time.time() value, for logs ("-" for None)."""
    if wall is None:
        return "-"
    return f"{time.strftime('%H:%M:%S', time.localtime(wall))}.{int(wall % 1 * 1000):03d}"


def describe(freezes):
    return "; ".join(f"vCPU {cpu} at {stamp(w)} for {d * 1000:.0f} ms ({share:.0%} of it accounted)"
                     for cpu, w, d, share in freezes) or "none"


if __name__ == "__main__":
    import sys
    w = VcpuWatch()
    w.start()
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 10)
    print(describe(w.stop()))
