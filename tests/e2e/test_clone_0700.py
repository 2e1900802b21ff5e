#!/usr/bin/python3
"""The README's two commands from wherever the user cloned: a checkout in a
directory only root may enter (like /root, mode 0700). The lab runs Patroni
and PostgreSQL as `postgres`, which cannot enter such a directory; they must
start from the lab's state directory and need nothing from the checkout.

The repository is cloned (`git clone` of the source tree's HEAD) into a fresh
0700 directory, the built binary copied into the clone's build/, and the
clone's own `scripts/lab up` is run from inside it. Asserted: the lab comes
up, one write through VIP:5433 is acknowledged and read back, and Patroni's
working directory is the lab's state directory. Also: a --state-dir that
postgres cannot reach is refused at once, in one line, before anything is
created. Kept cheap for CI (one lab up/down, ~40 s)."""
import atexit
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import testmain  # noqa: E402  (skips show as skipped in CTest)

SOURCE = os.environ.get("VIPPROXY_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "scripts", "lab.d"))
import labkit  # noqa: E402
STATE = "/run/vipproxy-lab"
VIP = "10.88.1.160"
PSQL = "/usr/lib/postgresql/15/bin/psql"


def _sigterm(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


class LabFromA0700Clone(unittest.TestCase):
    tmp = clone = None
    lab_up = False

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("the lab needs root (network namespaces)")
        binary = os.environ.get("VIPPROXY_BIN", os.path.join(SOURCE, "build", "vipproxy"))
        if not os.access(binary, os.X_OK):
            raise unittest.SkipTest(f"{binary} is not built")
        if subprocess.run(["git", "-C", SOURCE, "rev-parse", "--git-dir"], capture_output=True).returncode != 0:
            raise unittest.SkipTest(f"{SOURCE} is not a git checkout: nothing to clone")
        signal.signal(signal.SIGTERM, _sigterm)
        signal.signal(signal.SIGHUP, _sigterm)  # a closed terminal: the lab goes down too
        atexit.register(cls._cleanup)
        cls.tmp = tempfile.mkdtemp(prefix="vipproxy-0700-")  # mode 0700, like /root
        cls.clone = os.path.join(cls.tmp, "vipproxy")
        subprocess.run(["git", "clone", "--quiet", SOURCE, cls.clone], check=True)
        os.makedirs(os.path.join(cls.clone, "build"))
        cls.binary = os.path.join(cls.clone, "build", "vipproxy")
        shutil.copy2(binary, cls.binary)

    @classmethod
    def _cleanup(cls):
        if cls.lab_up:
            cls.lab_up = False
            cls.lab("down")
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            cls.tmp = None

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    @classmethod
    def lab(cls, *args, timeout=400):
        """The clone's scripts/lab, run from inside the clone as a user would."""
        env = dict(os.environ, VIPPROXY_BIN=cls.binary)
        env.pop("VIPPROXY_LAB_STATE", None)
        # Stopped meanwhile, `up` gets SIGTERM and time to stop what it
        # started (subprocess.run would SIGKILL it: labkit.run_stoppable).
        return labkit.run_stoppable([os.path.join(cls.clone, "scripts", "lab"), *args], cwd=cls.clone, env=env,
                                    text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)

    def test_0_premise(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.tmp).st_mode), 0o700)
        r = subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", "test", "-x",
                            self.clone], cwd="/")
        self.assertNotEqual(r.returncode, 0, "postgres can enter the clone: this test would prove nothing")

    def test_1_state_dir_out_of_reach_is_refused_in_one_line(self):
        state = os.path.join(self.tmp, "state")
        r = self.lab("up", "--state-dir", state, timeout=120)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("scripts/lab:") and "out of reach" in ln]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("--state-dir", lines[0])
        self.assertFalse(os.path.exists(state), "the refused state dir was left behind")
        ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertNotIn("vl-", ns, "namespaces were created before the check")

    def test_2_lab_up_and_one_write_through_the_vip(self):
        # --owner-pid: killed before its `down`, this run's lab is taken down
        # by the next `scripts/lab up` (scripts/lab.d/lab.py).
        r = self.lab("up", "--fast-dcs", "--owner-pid", str(os.getpid()))
        print(r.stdout[-3000:] + r.stderr[-3000:])
        # A failed `up` has stopped what it started (or found another lab
        # running, which is not ours to stop).
        self.assertEqual(r.returncode, 0, "scripts/lab up from a 0700 clone failed")
        type(self).lab_up = True
        sql = ("create table if not exists clone_0700 (v int); "
               "insert into clone_0700 values (700) returning v, inet_server_addr()")
        w = self.lab("exec", "dirtoha", "env", "PGCONNECT_TIMEOUT=3", PSQL, "-X", "-At", "-h", VIP, "-p", "5433",
                     "-U", "postgres", "-d", "postgres", "-c", sql, timeout=60)
        self.assertEqual(w.returncode, 0, w.stdout + w.stderr)
        self.assertRegex(w.stdout, r"(?m)^700\|10\.88\.1\.15[12]$", "the write was not acknowledged through the VIP")
        rd = self.lab("exec", "dirtoha", "env", "PGCONNECT_TIMEOUT=3", PSQL, "-X", "-At", "-h", VIP, "-p", "5433",
                      "-U", "postgres", "-d", "postgres", "-c", "select count(*) from clone_0700 where v = 700",
                      timeout=60)
        self.assertEqual(rd.stdout.strip(), "1", rd.stdout + rd.stderr)
        with open(os.path.join(STATE, "pids", "patroni-catalog01.pid")) as f:
            pid = int(f.read().split()[0])
        cwd = os.readlink(f"/proc/{pid}/cwd")
        self.assertTrue(cwd.startswith(STATE + "/"), f"Patroni runs from {cwd}, not from the lab's state dir")
        type(self).lab_up = False
        d = self.lab("down", timeout=300)
        self.assertEqual(d.returncode, 0, d.stdout + d.stderr)


if __name__ == "__main__":
    testmain.main()
