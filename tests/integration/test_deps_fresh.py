#!/usr/bin/python3
"""What `scripts/demo` and `scripts/test` run is installed by them on a fresh
Debian 12 (README, "The two commands").

They install what is missing with scripts/deps (scripts/test, scripts/demo),
scripts/lab.d/packages (scripts/lab up: the demo and the e2e tests) and
scripts/lab.d/bacula-packages (the demo, tests/e2e/test_bacula.py), each with
--no-install-recommends. A fresh Debian 12 has only the packages of priority
required and important (debootstrap's default; "standard" is a task the
installer may leave out, and cloud or container images do). So every command
and Python module the Python tests and scripts use must come from a package
in the dependency closure of those three lists, or from one of priority
required or important.

The commands are found in the sources: the first element of an argv list
(`["curl", ...]`, `sh("man", ...)`) and the argument of `shutil.which(...)`;
the Python modules from their `import` lines. Each is resolved on this
machine (a command or module it does not have is not checked here: the tests
that use it fail on their own) and its package found with `dpkg -S`.

Needs apt-cache and dpkg-query with Debian 12's package lists (skips
otherwise); no root, no network.
"""
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import testmain  # noqa: E402

ROOT = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
INSTALLERS = ["scripts/deps", "scripts/lab.d/packages", "scripts/lab.d/bacula-packages"]
# What each of them sources (the lock, policy-rc.d guard and apt-get calls).
INSTALLER_LIB = "scripts/lib/install-packages.sh"
# Where the commands and modules are used: everything scripts/test and
# scripts/demo run (tests, the lab, the demo and its plots).
SOURCES = ["tests/**/*.py", "scripts/**/*.py"]
# Words in first position of a list that are data, not a command, yet name
# a program on this machine.
NOT_COMMANDS = set()


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def installer_packages(path):
    """The PACKAGES=( ... ) array of a bash installer, comments stripped."""
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    words, inside = [], False
    for line in text.splitlines():
        code = line.split("#", 1)[0]
        if not inside:
            if not code.startswith("PACKAGES=("):
                continue
            inside, code = True, code[len("PACKAGES=("):]
        body, closed, _ = code.partition(")")
        words += body.split()
        if closed:
            return words
    raise AssertionError(f"{path}: no PACKAGES=( ... ) array")


def closure(packages):
    """Every package `apt-get install --no-install-recommends packages`
    could bring in (Depends and Pre-Depends, every alternative)."""
    r = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
             "--no-breaks", "--no-replaces", "--no-enhances"] + packages)
    if r.returncode != 0:
        raise AssertionError(f"apt-cache depends failed:\n{r.stderr}")
    return {line.strip() for line in r.stdout.splitlines() if line and not line.startswith(" ")}


def priority(package):
    r = run(["apt-cache", "show", "--no-all-versions", package])
    m = re.search(r"(?m)^Priority: (\S+)$", r.stdout)
    return m.group(1) if m else None


def owner(path):
    """The package that ships `path`, trying the /usr-merged spellings."""
    real = os.path.realpath(path)
    candidates = [path, real]
    for p in list(candidates):
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/"), ("/usr/lib/", "/lib/")):
            if p.startswith(a):
                candidates.append(b + p[len(a):])
            elif p.startswith(b):
                candidates.append(a + p[len(b):])
    for p in candidates:
        r = run(["dpkg-query", "-S", p])
        for line in r.stdout.splitlines():  # "dash: /bin/sh", not "diversion by dash from: /bin/sh"
            if r.returncode == 0 and not line.startswith("diversion by "):
                return line.split(":", 1)[0].split(",")[0].strip()
    return None


def sources():
    for pattern in SOURCES:
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            if "__pycache__" not in path and os.path.abspath(path) != os.path.abspath(__file__):
                yield path


def used_commands():
    """{command: first file that runs it}."""
    found = {}
    # "[" after a name or a bracket is a subscript (d["node"]), not a list.
    argv0 = re.compile(r"""(?:(?<![\w\])])\[\s*|\bsh\(\s*|shutil\.which\(\s*)["']([A-Za-z][A-Za-z0-9_.+-]*)["']\s*[,\])]""")
    for path in sources():
        with open(path, errors="replace") as f:
            for name in argv0.findall(f.read()):
                found.setdefault(name, os.path.relpath(path, ROOT))
    return found


def used_modules():
    """{top-level module: first file that imports it}, the repo's own left out."""
    found = {}
    imp = re.compile(r"(?m)^\s*(?:import|from)\s+([A-Za-z_][A-Za-z0-9_]*)")
    for path in sources():
        with open(path, errors="replace") as f:
            for name in imp.findall(f.read()):
                found.setdefault(name, os.path.relpath(path, ROOT))
    return found


class FreshDebianDeps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("apt-cache", "dpkg-query"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"needs {tool} (a Debian machine)")
        if priority("libc6") is None:
            raise unittest.SkipTest("apt-cache knows no package (no package lists: apt-get update)")
        cls.installed = {}
        for path in INSTALLERS:
            cls.installed[path] = installer_packages(path)
        everything = sorted({p for ps in cls.installed.values() for p in ps})
        cls.closure = closure(everything)
        cls.base = {}  # package -> on every Debian 12?

    def on_fresh_machine(self, package):
        if package in self.closure:
            return True
        if package not in self.base:
            self.base[package] = priority(package) in ("required", "important")
        return self.base[package]

    def test_1_installers_parse(self):
        # The parser above reads what the scripts install (a guard against
        # checking an empty list).
        self.assertIn("cmake", self.installed["scripts/deps"])
        self.assertIn("patroni", self.installed["scripts/lab.d/packages"])
        self.assertIn("bacula-fd", self.installed["scripts/lab.d/bacula-packages"])
        self.assertIn("debootstrap", self.closure)

    def test_2_commands(self):
        missing = []
        checked = 0
        for name, where in sorted(used_commands().items()):
            if name in NOT_COMMANDS:
                continue
            path = shutil.which(name)
            if not path or path.startswith(os.path.realpath(ROOT)) or not os.path.isabs(path):
                continue
            pkg = owner(path)
            if pkg is None:
                continue  # not from a package (/usr/local): not ours to judge
            checked += 1
            if not self.on_fresh_machine(pkg):
                missing.append(f"{name} ({pkg}, priority {priority(pkg)}), used in {where}")
        self.assertGreater(checked, 20, "too few commands found: the scan is broken")
        self.assertEqual(missing, [], "commands the tests or the demo run that no installer installs on a "
                                      "fresh Debian 12 (add their package to scripts/deps)")

    def test_3_python_modules(self):
        missing = []
        checked = 0
        for name, where in sorted(used_modules().items()):
            if name in sys.builtin_module_names:
                continue
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                spec = None
            if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
                continue
            if os.path.realpath(spec.origin).startswith(os.path.realpath(ROOT) + os.sep):
                continue  # the repo's own helpers
            pkg = owner(spec.origin)
            if pkg is None:
                continue
            checked += 1
            if not self.on_fresh_machine(pkg):
                missing.append(f"{name} ({pkg}), imported in {where}")
        self.assertGreater(checked, 20, "too few modules found: the scan is broken")
        self.assertEqual(missing, [], "Python modules no installer installs on a fresh Debian 12")

    def test_4_installers_say_they_need_root(self):
        """Run by a user who is not root with a package missing, each
        installer says so and which packages, and runs nothing (apt-get not
        called; before, each tried to write /usr/sbin/policy-rc.d and ended
        on "Permission denied"). A fake dpkg-query reports
        one package missing, a fake apt-get records that it was called."""
        if os.geteuid() != 0:
            self.skipTest("runs the installers as nobody: needs root to switch")
        fake = tempfile.mkdtemp(prefix="vipproxy-deps-")
        self.addCleanup(shutil.rmtree, fake, True)
        os.chmod(fake, 0o755)
        called = os.path.join(fake, "apt-get-called")
        with open(os.path.join(fake, "dpkg-query"), "w") as f:
            f.write("#!/bin/sh\n# every package installed but cmake, iproute2 and bacula-fd\n"
                    "for a; do last=$a; done\n"
                    "case $last in cmake|iproute2|bacula-fd) exit 1;; esac\n"
                    "printf 'install ok installed'\n")
        with open(os.path.join(fake, "apt-get"), "w") as f:
            f.write(f"#!/bin/sh\necho \"$@\" >> {called}\nexit 0\n")
        for name in ("dpkg-query", "apt-get"):
            os.chmod(os.path.join(fake, name), 0o755)
        # Copies, in the checkout's layout (each installer sources
        # scripts/lib/install-packages.sh by its path relative to its own):
        # nobody cannot read the checkout when it is under a 0700 directory
        # (/root, a mktemp -d clone), which the README allows.
        for path in INSTALLERS + [INSTALLER_LIB]:
            copy = os.path.join(fake, path)
            os.makedirs(os.path.dirname(copy), mode=0o755, exist_ok=True)
            shutil.copyfile(os.path.join(ROOT, path), copy)
            os.chmod(copy, 0o755)
        for d in ("scripts", "scripts/lab.d", "scripts/lib"):
            os.chmod(os.path.join(fake, d), 0o755)
        for path, pkg in (("scripts/deps", "cmake"), ("scripts/lab.d/packages", "iproute2"),
                          ("scripts/lab.d/bacula-packages", "bacula-fd")):
            with self.subTest(installer=path):
                script = os.path.join(fake, path)
                r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
                                    "/bin/bash", script], capture_output=True, text=True,
                                   timeout=60, env={"PATH": fake + ":/usr/sbin:/usr/bin:/sbin:/bin"})
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn("root", r.stderr)
                self.assertIn(pkg, r.stderr)
                self.assertNotIn("Permission denied", r.stderr)
                self.assertFalse(os.path.exists(called), "apt-get was run")

    def test_5_installers_refresh_the_lists_first(self):
        """As root with a package missing, each installer runs `apt-get
        update` before `apt-get install`: lists made weeks ago (an image
        with the build packages already in) name versions the archive no
        longer has, and the install fails with 404. Run in a mount
        namespace of its own with a tmpfs on /usr/sbin (the policy-rc.d
        the installers write goes there, not to this machine) and fakes of
        dpkg-query, apt-get and debconf-set-selections first on PATH."""
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare (a mount namespace)")
        fake = tempfile.mkdtemp(prefix="vipproxy-deps-")
        self.addCleanup(shutil.rmtree, fake, True)
        calls = os.path.join(fake, "calls")
        scripts = {
            "dpkg-query": "for a; do last=$a; done\n"
                          "case $last in cmake|iproute2|bacula-fd) exit 1;; esac\n"
                          "printf 'install ok installed'\n",
            "apt-get": f"echo \"apt-get $*\" >> {calls}\n",
            "debconf-set-selections": "cat >/dev/null\n",
        }
        for name, body in scripts.items():
            with open(os.path.join(fake, name), "w") as f:
                f.write("#!/bin/sh\n" + body)
            os.chmod(os.path.join(fake, name), 0o755)
        for path in INSTALLERS:
            with self.subTest(installer=path):
                if os.path.exists(calls):
                    os.unlink(calls)
                r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                    'mount -t tmpfs tmpfs /usr/sbin && exec /bin/bash "$0"',
                                    os.path.join(ROOT, path)], capture_output=True, text=True, timeout=60,
                                   env={"PATH": fake + ":/usr/bin:/bin"})
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                with open(calls) as f:
                    verbs = [line.split()[1 + next(i for i, w in enumerate(line.split()[1:])
                                                   if not w.startswith("-"))] for line in f]
                self.assertEqual(verbs, ["update", "install"], f"{path}: apt-get calls")

    def test_6_two_installers_at_once_leave_no_policy_rc_d(self):
        """Two installers at once (scripts/test's scripts/deps while
        scripts/lab up runs scripts/lab.d/packages): the second saved the
        first one's temporary policy-rc.d (`exit 101`) as the machine's, and
        put it back after the first had removed it, so every later package
        install on the machine started no service. Now one waits for the
        other (flock). Run as test_5 (a tmpfs on /usr/sbin, fakes first on
        PATH): the first installer's `apt-get install` starts the second and
        waits until that one has either passed its save of policy-rc.d (its
        `apt-get update` ran) or waits for the lock (a `flock` child); the
        first then finishes, the second after it. No policy-rc.d may be
        left."""
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare (a mount namespace)")
        fake = tempfile.mkdtemp(prefix="vipproxy-deps-")
        self.addCleanup(shutil.rmtree, fake, True)
        first, second = (os.path.join(ROOT, p) for p in ("scripts/lab.d/packages", "scripts/deps"))
        scripts = {
            "dpkg-query": "for a; do last=$a; done\n"
                          "case $last in cmake|iproute2) exit 1;; esac\n"
                          "printf 'install ok installed'\n",
            # The second's `update`: it has saved policy-rc.d; it goes on once the first has ended.
            # The first's `install`: starts the second, waits until it is past the save or at the lock.
            "apt-get": f"""echo "$ROLE apt-get $*" >> {fake}/calls
case "$ROLE $1" in
  "second update")
    touch {fake}/second-past-save
    i=0; while [ ! -e {fake}/first-done ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done ;;
  "first install")
    ROLE=second /bin/bash {second} > {fake}/second.out 2>&1 &
    echo $! > {fake}/second.pid
    i=0
    while [ $i -lt 600 ]; do
      [ -e {fake}/second-past-save ] && break
      for c in $(cat /proc/$(cat {fake}/second.pid)/task/*/children 2>/dev/null); do
        [ "$(cat /proc/$c/comm 2>/dev/null)" = flock ] && echo "second waits for the lock" >> {fake}/calls && i=600
      done
      sleep 0.05; i=$((i+1))
    done ;;
esac
""",
        }
        for name, body in scripts.items():
            with open(os.path.join(fake, name), "w") as f:
                f.write("#!/bin/sh\n" + body)
            os.chmod(os.path.join(fake, name), 0o755)
        # In the namespace: the first installer, then (it has ended) the
        # second's wait released, the second waited for, and what is left.
        inside = f"""mount -t tmpfs tmpfs /usr/sbin
ROLE=first /bin/bash {first}; echo "first exit $?"
touch {fake}/first-done
pid=$(cat {fake}/second.pid)
i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
kill -0 $pid 2>/dev/null && echo "second still running"
cat {fake}/second.out
ls /usr/sbin
"""
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", inside],
                           capture_output=True, text=True, timeout=120, env={"PATH": fake + ":/usr/bin:/bin"})
        with open(os.path.join(fake, "calls")) as f:
            calls = f.read()
        out = r.stdout + r.stderr + "\ncalls:\n" + calls
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("first exit 0", r.stdout, out)
        self.assertNotIn("second still running", r.stdout, out)
        self.assertIn("second apt-get install", calls, out)  # the second did install
        self.assertNotIn("policy-rc.d", r.stdout.split("\n"), "a policy-rc.d was left:\n" + out)


if __name__ == "__main__":
    testmain.main()
