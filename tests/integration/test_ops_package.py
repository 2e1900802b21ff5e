#!/usr/bin/python3
"""The Debian package as an operator meets it: build the .deb with CPack from
the build dir of VIPPROXY_BIN, inspect its control data (Depends from
dpkg-shlibdeps plus adduser, the conffile, maintainer scripts), `dpkg -i` it,
check `vipproxy --version`, `--check-config /etc/vipproxy/vipproxy.yaml` (as
root and as the vipproxy user the unit runs as), the system user, the config's
permissions, `systemd-analyze verify` of the installed unit (it runs without
systemd as PID 1), then `dpkg -r` (conffile kept) and `dpkg -P` (gone).

The machine is left as it was: a vipproxy package already installed makes
the test fail without touching it; a vipproxy user created by the package is
removed again. Needs root and dpkg.

Environment: VIPPROXY_BIN (the built binary; its directory is the build
dir), VIPPROXY_SOURCE_DIR.
"""
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
import testmain  # noqa: E402

ROOT = os.environ.get("VIPPROXY_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BIN = os.environ.get("VIPPROXY_BIN", os.path.join(ROOT, "build", "vipproxy"))
BUILD = os.path.dirname(os.path.abspath(BIN))
UNIT = "/lib/systemd/system/vipproxy.service"
CONF = "/etc/vipproxy/vipproxy.yaml"


def sh(*argv, check=True, timeout=600, **kw):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def installed():
    r = sh("dpkg-query", "-W", "-f=${Status}", "vipproxy", check=False)
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("the package test needs root (dpkg -i)")
        for tool in ("dpkg", "dpkg-deb", "cpack", "dpkg-shlibdeps"):
            if not shutil.which(tool):
                raise unittest.SkipTest(f"the package test needs {tool} (scripts/deps installs it)")
        r = sh("dpkg-query", "-W", "-f=${Status} ${Version}", "vipproxy", check=False)
        if r.returncode == 0 and r.stdout.split()[:1] != ["unknown"] and "not-installed" not in r.stdout:
            raise RuntimeError(f"a vipproxy package is already on this machine ({r.stdout.strip()}); "
                               "this test installs and purges its own and will not touch that one — "
                               "remove it first (dpkg -P vipproxy) or run the test elsewhere")
        if os.path.exists(CONF) or os.path.exists("/usr/sbin/vipproxy") or os.path.exists(UNIT):
            raise RuntimeError(f"{CONF}, /usr/sbin/vipproxy or {UNIT} exist without the package: "
                               "refusing to overwrite files this test did not create")
        cls.had_user = user_exists("vipproxy")
        cls.had_etc = os.path.isdir("/etc/vipproxy")
        cls.tmp = tempfile.mkdtemp(prefix="vipproxy-pkg-")
        cls.we_installed = False
        if not os.path.exists(os.path.join(BUILD, "CPackConfig.cmake")):
            raise RuntimeError(f"{BUILD} has no CPackConfig.cmake: not a configured build dir")
        r = sh("cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", cls.tmp,
               cwd=BUILD, timeout=900)
        debs = glob.glob(os.path.join(cls.tmp, "*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"cpack made {debs}:\n{r.stdout}\n{r.stderr}")
        cls.deb = debs[0]

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.we_installed:  # only ever the package this test installed
                sh("dpkg", "-P", "vipproxy", check=False)
            if not cls.had_user and user_exists("vipproxy"):
                sh("userdel", "vipproxy", check=False)
                sh("groupdel", "vipproxy", check=False)
            if not cls.had_etc and os.path.isdir("/etc/vipproxy") and not os.listdir("/etc/vipproxy"):
                os.rmdir("/etc/vipproxy")
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

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
            self.assertTrue(os.access(os.path.join(ctl, script), os.X_OK), script)

    def test_2_install_check_remove(self):
        r = sh("dpkg", "-i", self.deb, check=False)
        type(self).we_installed = True
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(installed())
        # The binary the unit starts.
        r = sh("/usr/sbin/vipproxy", "--version")
        self.assertRegex(r.stdout, r"^vipproxy \d+\.\d+\.\d+")
        r = sh("/usr/sbin/vipproxy", "--check-config", CONF, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The system user and a config only root and that user can read.
        u = pwd.getpwnam("vipproxy")
        self.assertLess(u.pw_uid, 1000)
        st = os.stat(CONF)
        self.assertEqual(st.st_mode & 0o777, 0o640)
        self.assertEqual((st.st_uid, st.st_gid), (0, u.pw_gid))
        # ExecStartPre runs --check-config as that user.
        r = sh("setpriv", "--reuid=vipproxy", "--regid=vipproxy", "--init-groups", "--",
               "/usr/sbin/vipproxy", "--check-config", CONF, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The unit file: systemd-analyze runs without systemd as PID 1.
        self.assertTrue(os.path.exists(UNIT))
        if shutil.which("systemd-analyze"):
            r = sh("systemd-analyze", "verify", UNIT, check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stderr.strip(), "", "systemd-analyze verify complained")
        else:
            self.check_unit_keys()
        r = sh("man", "-w", "vipproxy", check=False)
        self.assertEqual(r.returncode, 0, "man page not found")

        # Remove: binary and unit gone, the (possibly edited) conffile kept.
        sh("dpkg", "-r", "vipproxy")
        self.assertFalse(os.path.exists("/usr/sbin/vipproxy"))
        self.assertFalse(os.path.exists(UNIT))
        self.assertTrue(os.path.exists(CONF))
        # Purge: the conffile and its directory gone too.
        sh("dpkg", "-P", "vipproxy")
        self.assertFalse(os.path.exists(CONF))
        self.assertFalse(os.path.exists("/etc/vipproxy"))
        r = sh("dpkg-query", "-W", "-f=${Status}", "vipproxy", check=False)
        self.assertTrue(r.returncode != 0 or "not-installed" in r.stdout, r.stdout)
        type(self).we_installed = False

    def check_unit_keys(self):
        """Fallback when systemd-analyze is missing: the keys the unit must have."""
        with open(UNIT) as f:
            text = f.read()
        for key in ("Type=notify", "ExecStart=/usr/sbin/vipproxy --config /etc/vipproxy/vipproxy.yaml",
                    "ExecReload=/bin/kill -HUP $MAINPID", "User=vipproxy", "NoNewPrivileges=yes",
                    "ProtectSystem=strict", "WatchdogSec=",
                    "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE"):
            self.assertIn(key, text)


if __name__ == "__main__":
    testmain.main()
