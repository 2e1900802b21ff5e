#!/usr/bin/python3
"""A real client: Debian's Bacula 9.6 Director (bacula-director-pgsql), SD and
FD on the Director host, catalog at VIP:5433 through vipproxy. The catalog
tables are created through the VIP, one backup job runs before a planned
switchover and one after it, without restarting the Director (the Director
opens a catalog connection per job: no Catalog setting is needed), and
bconsole shows both jobs, their files, and that the new primary answers."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import LabCase, S, SOURCE, testmain  # noqa: E402

BACULA = os.path.join(SOURCE, "scripts", "lab.d", "bacula.py")


class BaculaCatalogThroughVip(LabCase):
    LAB_OPTS = ["--frontend", "vipproxy", "--etcd-members", "3", "--fast-dcs"]

    @classmethod
    def setUpClass(cls):
        r = subprocess.run([os.path.join(SOURCE, "scripts", "lab.d", "bacula-packages")])
        if r.returncode != 0:
            raise unittest.SkipTest("Bacula packages could not be installed")
        super().setUpClass()

    def bacula(self, *args, timeout=240):
        return subprocess.run(["/usr/bin/python3", BACULA, *args, "--state-dir", self.lab.state_dir], text=True,
                              capture_output=True, timeout=timeout)

    def backup(self):
        r = self.bacula("backup")
        print(r.stdout + r.stderr)
        self.assertEqual(r.returncode, 0, f"backup job failed: {r.stdout}{r.stderr}")
        return re.search(r"JobId=(\d+)", r.stdout).group(1)

    def catalog_server(self):
        out = self.bacula("console", '.sql query="select inet_server_addr()"').stdout
        m = re.search(r"^(10\.88\.1\.15\d)\b", out, re.M)
        return S.node_of(m.group(1)) if m else None

    def test_backup_before_and_after_switchover(self):
        leader, _ = self.lab.wait_steady()
        r = self.bacula("start")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("26 tables", r.stdout + r.stderr, "make_postgresql_tables through the VIP")
        first = self.backup()
        self.assertEqual(self.catalog_server(), leader)
        other = [h for h in S.CATALOGS if h != leader][0]
        print(self.lab.switchover(leader, other))
        self.lab.wait_steady()
        second = self.backup()  # the same Director process
        self.assertEqual(self.catalog_server(), other)
        jobs = self.bacula("console", "list jobs").stdout
        print(jobs)
        for jobid in (first, second):
            self.assertRegex(jobs, r"\|\s*" + jobid + r"\s*\|\s*LabBackup\s*\|.*\|\s*T\s*\|")
            files = self.bacula("console", f"list files jobid={jobid}").stdout
            self.assertIn("file07.txt", files, f"files of job {jobid} in the catalog")
        self.assertTrue(self.lab.proc_pid("bacula-dir"), "the Director was not restarted")


if __name__ == "__main__":
    testmain.main()
