#!/usr/bin/python3
"""The Debian package as an operator meets it, installed into a throwaway
root, never into this machine's: build the .deb with CPack from the build dir
of VIPPROXY_BIN, inspect its control data (Depends from dpkg-shlibdeps plus
adduser and procps, the conffile, maintainer scripts that pass `sh -n`), then
in a chroot on an overlay of the Debian 12 tree test_systemd_nspawn.py boots
(debtree.py; no systemd running there, as in an image build): `dpkg -i`,
`vipproxy --version`, `--check-config /etc/vipproxy/vipproxy.yaml` as root
and as the vipproxy user the unit runs as, the system user, the config's
permissions, the postinst run again (idempotent), a reinstall,
`systemd-analyze verify` of the installed unit, the man page, then `dpkg -r`
(conffile kept) and `dpkg -P` (gone, and nothing else left but the user).

Each chroot command runs in a mount namespace of its own (`unshare -m`) that
mounts the overlay, /proc and the .deb's directory: when the command ends its
mounts go with it, so an interrupted run leaves no mount behind, only its
temporary directory. The machine's own dpkg database, users and /etc are
checked to be as they were.

Needs root, cpack, dpkg-deb, dpkg-shlibdeps, unshare, and the tree
(debootstrap and network to Debian's archive the first time in a build dir).

Environment: VIPPROXY_BIN (the built binary; its directory is the build
dir), VIPPROXY_SOURCE_DIR.
"""
import atexit
import glob
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import debtree  # noqa: E402  (puts scripts/lab.d on the path)
import labkit  # noqa: E402
import testmain  # noqa: E402

ROOT = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BIN = os.environ.get("VIPPROXY_BIN", os.path.join(ROOT, "build", "vipproxy"))
BUILD = os.path.dirname(os.path.abspath(BIN))
UNIT = "/lib/systemd/system/vipproxy.service"
CONF = "/etc/vipproxy/vipproxy.yaml"
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
              "DEBIAN_FRONTEND": "noninteractive"}


def sh(*argv, check=True, timeout=600, **kw):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def host_state():
    """What this test must not change on the machine itself."""
    try:
        user = pwd.getpwnam("vipproxy")
    except KeyError:
        user = None
    r = sh("dpkg-query", "-W", "-f=${Status} ${Version}", "vipproxy", check=False)
    return {"dpkg": (r.returncode, r.stdout), "user": user, "etc": os.path.exists("/etc/vipproxy"),
            "unit": os.path.exists(UNIT), "binary": os.path.exists("/usr/sbin/vipproxy")}


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("the package test needs root (chroot, mounts)")
        for tool in ("dpkg-deb", "cpack", "dpkg-shlibdeps", "unshare", "chroot"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"the package test needs {tool} (scripts/deps installs it)")
        if not os.path.exists(os.path.join(BUILD, "CPackConfig.cmake")):
            raise RuntimeError(f"{BUILD} has no CPackConfig.cmake: not a configured build dir")
        # SIGTERM or SIGHUP ends the run as Ctrl-C does; the atexit below
        # removes the directory (no mount outlives its command).
        labkit.stop_on_signals()
        cls.host_before = host_state()
        cls.tmp = tempfile.mkdtemp(prefix="vipproxy-pkg-")
        atexit.register(shutil.rmtree, cls.tmp, True)
        debdir = os.path.join(cls.tmp, "deb")
        os.makedirs(debdir)
        r = sh("cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", debdir,
               cwd=BUILD, timeout=900)
        debs = glob.glob(os.path.join(debdir, "*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"cpack made {debs}:\n{r.stdout}\n{r.stderr}")
        shutil.rmtree(os.path.join(debdir, "_CPack_Packages"), ignore_errors=True)
        cls.deb = debs[0]
        if not debtree.have_tree(cls.deb, BUILD) and not shutil.which("debootstrap"):
            raise unittest.SkipTest("the package test needs debootstrap (scripts/deps installs it) for its tree")
        cls.tree = debtree.tree_for(cls.deb, BUILD)
        cls.root = os.path.join(cls.tmp, "root")
        for d in ("root", "upper", "work"):
            os.makedirs(os.path.join(cls.tmp, d))

    @classmethod
    def tearDownClass(cls):
        tmp = getattr(cls, "tmp", None)
        if tmp:
            # The mounts were in namespaces gone with their commands: the
            # directory holds only files.
            shutil.rmtree(tmp, ignore_errors=True)

    def chroot(self, *argv, check=True):
        """`argv` in the throwaway root, as root, without systemd."""
        t = self.tmp
        setup = (f"mount -t overlay overlay -o lowerdir={self.tree},upperdir={t}/upper,workdir={t}/work {t}/root"
                 f" && mount -t proc proc {t}/root/proc && mount --bind {t}/deb {t}/root/mnt"
                 ' && exec chroot "$0" "$@"')
        return sh("unshare", "--mount", "--propagation", "private", "sh", "-c", setup, self.root, *argv,
                  check=check, env=CHROOT_ENV)

    def field(self, name):
        return sh("dpkg-deb", "-f", self.deb, name).stdout.strip()

    def test_1_control_data(self):
        self.assertEqual(self.field("Package"), "vipproxy")
        version = sh(BIN, "--version").stdout.split()[-1]
        self.assertEqual(self.field("Version"), version)
        depends = self.field("Depends")
        # Computed by dpkg-shlibdeps from the binary, plus adduser for postinst
        # and procps for the unit's ExecReload=/bin/kill.
        for lib in ("libc6", "libstdc++6", "libyaml-cpp0.7", "libboost-json1.81.0", "adduser", "procps"):
            self.assertIn(lib, depends)
        self.assertRegex(depends, r"libc6 \(>= [0-9.]+\)")
        files = sh("dpkg-deb", "-c", self.deb).stdout
        for path in ("./usr/sbin/vipproxy", "." + UNIT, "." + CONF, "./usr/share/man/man8/vipproxy.8",
                     "./usr/share/doc/vipproxy/README.md", "./usr/share/doc/vipproxy/migrating.md",
                     # migrating.md links to it; `vipproxy import --help` names it
                     "./usr/share/doc/vipproxy/importer.md"):
            self.assertRegex(files, r"(?m) " + re.escape(path) + "$", path)
        ctl = os.path.join(self.tmp, "control")
        sh("dpkg-deb", "-e", self.deb, ctl)
        with open(os.path.join(ctl, "conffiles")) as f:
            self.assertEqual(f.read().split(), [CONF])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(ctl, script)
            self.assertTrue(os.access(path, os.X_OK), script)
            # dpkg runs them with /bin/sh (dash on Debian): its syntax, and set -e.
            r = sh("sh", "-n", path, check=False)
            self.assertEqual(r.returncode, 0, f"{script}: {r.stderr}")
            with open(path) as f:
                self.assertRegex(f.read(), r"(?m)^set -e$", script)

    def test_2_install_check_remove_purge(self):
        r = self.chroot("dpkg", "-i", "/mnt/" + os.path.basename(self.deb), check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The binary the unit starts.
        r = self.chroot("/usr/sbin/vipproxy", "--version")
        self.assertRegex(r.stdout, r"^vipproxy \d+\.\d+\.\d+")
        r = self.chroot("/usr/sbin/vipproxy", "--check-config", CONF, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The system user and a config only root and that user can read.
        uid, gid = (int(x) for x in self.chroot("sh", "-c", "id -u vipproxy; id -g vipproxy").stdout.split())
        self.assertLess(uid, 1000)
        self.assertEqual(self.chroot("stat", "-c", "%a %u %g", CONF).stdout.split(), ["640", "0", str(gid)])
        # ExecStartPre runs --check-config as that user.
        r = self.chroot("setpriv", "--reuid=vipproxy", "--regid=vipproxy", "--init-groups", "--",
                        "/usr/sbin/vipproxy", "--check-config", CONF, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The postinst again (dpkg-reconfigure, a configure retried after an
        # error): no second user, the same permissions, success.
        version = self.field("Version")
        r = self.chroot("/var/lib/dpkg/info/vipproxy.postinst", "configure", version, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.chroot("sh", "-c", "grep -c '^vipproxy:' /etc/passwd").stdout.strip(), "1")
        self.assertEqual(self.chroot("stat", "-c", "%a %u %g", CONF).stdout.split(), ["640", "0", str(gid)])
        # A reinstall of the same version.
        r = self.chroot("dpkg", "-i", "/mnt/" + os.path.basename(self.deb), check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The unit file (--man=no: the tree has no man; the page is checked below).
        r = self.chroot("systemd-analyze", "verify", "--man=no", UNIT, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "", "systemd-analyze verify complained")
        if shutil.which("man"):
            r = sh("man", f"--manpath={self.tmp}/upper/usr/share/man", "-w", "vipproxy", check=False)
            self.assertEqual(r.returncode, 0, "man page not found")

        # Remove: binary and unit gone, the (possibly edited) conffile kept.
        self.chroot("dpkg", "-r", "vipproxy")
        for path in ("/usr/sbin/vipproxy", UNIT):
            self.assertNotEqual(self.chroot("test", "-e", path, check=False).returncode, 0, path)
        self.assertEqual(self.chroot("test", "-f", CONF, check=False).returncode, 0, "dpkg -r removed the conffile")
        # Purge: the conffile and its directory gone too.
        self.chroot("dpkg", "-P", "vipproxy")
        self.assertNotEqual(self.chroot("test", "-e", "/etc/vipproxy", check=False).returncode, 0)
        r = self.chroot("dpkg-query", "-W", "-f=${Status}", "vipproxy", check=False)
        self.assertTrue(r.returncode != 0 or "not-installed" in r.stdout, r.stdout)
        # Nothing else left in the root but the user (kept: Debian practice),
        # dpkg's own records and run/ (a tmpfs on a real machine; adduser's
        # and systemd-analyze's files there): every file the overlay holds.
        left = set()
        upper = os.path.join(self.tmp, "upper")
        for d, _, files in os.walk(upper):
            for name in files:
                rel = os.path.relpath(os.path.join(d, name), upper)
                if not re.match(r"(var/lib/dpkg|var/log|var/cache/debconf|var/cache/ldconfig|run)/", rel):
                    left.add(rel)
        allowed = {f"etc/{f}{s}" for f in ("passwd", "group", "shadow", "gshadow") for s in ("", "-")}
        allowed.add("etc/.pwd.lock")
        self.assertLessEqual(left, allowed, "purge left these behind")

    def test_3_machine_untouched(self):
        self.assertEqual(host_state(), self.host_before, "the test changed this machine's own root")


if __name__ == "__main__":
    testmain.main()
