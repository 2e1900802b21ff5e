#!/usr/bin/python3
"""A real client: Debian's Bacula 9.6 Director (bacula-director-pgsql), SD and
FD on the Director host, catalog at VIP:5433 through vipproxy. The catalog
tables are created through the VIP, one backup job runs before a planned
switchover and one after it, without restarting the Director (the Director
opens a catalog connection per job: no Catalog setting is needed), and
bconsole shows both jobs, their files, and that the new primary answers.

Then the guide's step 5 (docs/catalog-backup.md): bacula-fd on both catalog
nodes behind the client catalog-fd at the VIP, and BackupCatalog, whose
client-side steps dump the catalog through VIP:5433 and remove the dump. It
runs before and after a VIP move (vipproxy stopped on the holder, as
`systemctl stop vipproxy` does): each run is answered by the FD of the node
holding the VIP, each backup is restored and its dump loaded into a scratch
database whose row counts must equal the live catalog's just before the job.
One lab (and one Director) for both tests."""
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_common import LabCase, S, SOURCE, testmain  # noqa: E402
import bacula as B  # noqa: E402  (scripts/lab.d, on sys.path through e2e_common)

L = B.L  # scripts/lab.d/lab.py (tests/integration/lab.py is another module of that name)

BACULA = os.path.join(SOURCE, "scripts", "lab.d", "bacula.py")


class BaculaCatalogThroughVip(LabCase):
    LAB_OPTS = ["--frontend", "vipproxy", "--etcd-members", "3", "--fast-dcs"]

    @classmethod
    def setUpClass(cls):
        r = subprocess.run([os.path.join(SOURCE, "scripts", "lab.d", "bacula-packages")])
        if r.returncode != 0:
            raise unittest.SkipTest("Bacula packages could not be installed")
        super().setUpClass()
        r = subprocess.run(["/usr/bin/python3", BACULA, "start", "--state-dir", cls.lab.state_dir], text=True,
                           capture_output=True, timeout=240)
        cls.started = r

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

    def test_1_backup_before_and_after_switchover(self):
        leader, _ = self.lab.wait_steady()
        r = self.started
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

    def catalog_backup(self, holder):
        """BackupCatalog once, with the live catalog's row counts just before it."""
        st = L.State(self.lab.state_dir)
        before = B.table_counts(st, "bacula")
        fileset_known = B.psql_vip(st, "bacula", "select count(*) from fileset where fileset = 'Catalog'") != "0"
        res = B.backup_catalog(st)
        print(f"\n  {res['line']}")
        self.assertEqual(res["status"], "T", res["log"])
        self.assertEqual(res["fd"], f"{holder}-fd", "catalog-fd must be answered by the VIP holder's FD")
        self.assertEqual(res["node"], holder, "the dump is made on the VIP holder")
        self.assertRegex(res["log"], rf"{holder}-fd JobId {res['jobid']}: ClientAfterJob: catalog dump removed",
                         "the run-after step removes the dump")
        self.assertFalse(os.listdir(B.paths(st)["dump"]), "the dump is left on the catalog node")
        # What the Director writes as the job starts, before the client's
        # run-before step dumps the catalog: the job's own Job row and, the
        # first time the Catalog FileSet is used, its FileSet row.
        res["before"] = before
        res["at_dump"] = dict(before, job=before["job"] + 1, fileset=before["fileset"] + (0 if fileset_known else 1))
        return res

    def check_restored(self, res):
        """Restores one BackupCatalog job on the Director host, loads its dump
        into a scratch database and compares row counts with the live catalog
        just before that job, plus the rows the job's start adds (pg_dump's
        snapshot is taken while the job runs: its Job row is in the dump,
        JobStatus R)."""
        st = L.State(self.lab.state_dir)
        jobid = res["jobid"]
        path = B.restore_dump(st, jobid, st.path("dirtoha", "bacula", f"restore-{jobid}"))
        self.assertEqual(os.path.getsize(path), res["dump_bytes"], "restored dump differs from the one made")
        db = f"catalog_restore_{jobid}"
        B.load_dump(st, path, db)
        try:
            dump = B.table_counts(st, db)
            print(f"  JobId {jobid}: live before {res['before']}\n  JobId {jobid}: restored   {dump}")
            self.assertEqual(dump, res["at_dump"], f"row counts of the catalog restored from BackupCatalog job {jobid}")
            self.assertEqual(B.psql_vip(st, db, f"select jobstatus from job where jobid = {jobid}"), "R")
        finally:
            B.psql_vip(st, "postgres", f"drop database if exists {db}")

    def test_2_catalog_backup_before_and_after_vip_move(self):
        st = L.State(self.lab.state_dir)
        self.assertEqual(self.started.returncode, 0, self.started.stdout + self.started.stderr)
        _, holder = self.lab.wait_steady()
        first = self.catalog_backup(holder)
        # The VIP moves: vipproxy stops on the holder (SIGTERM: priority 0,
        # the VIP is released), the other node takes it over.
        other = [h for h in S.CATALOGS if h != holder][0]
        os.kill(self.lab.proc_pid(f"vipproxy-{holder}"), signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self.lab.vip_holders() != [other]:
            self.assertLess(time.monotonic(), deadline, f"the VIP did not move to {other}: {self.lab.vip_holders()}")
            time.sleep(0.2)
        try:
            second = self.catalog_backup(other)  # the same Director, the same client catalog-fd
        finally:
            L.start_vipproxy(st, holder)
        jobs = self.bacula("console", "list jobs").stdout
        print(jobs)
        for res in (first, second):
            self.assertRegex(jobs, r"\|\s*" + str(res["jobid"]) + r"\s*\|\s*BackupCatalog\s*\|.*\|\s*T\s*\|")
        self.lab.wait_steady()
        for res in (first, second):
            self.check_restored(res)


if __name__ == "__main__":
    testmain.main()
