#!/usr/bin/python3
# Over 500 lines: about 190 are the Bacula daemons' configuration text (configs()), next to the commands using it.
"""Bacula 9.6 (Debian's bacula-director-pgsql, bacula-sd, bacula-fd, bconsole) on
the lab's Director host, with its catalog at VIP:5433 — the real client vipproxy
is for. Needs a running lab (scripts/lab up) and scripts/lab.d/bacula-packages.

  bacula.py start [--state-dir DIR]   create the catalog through the VIP, start sd, fd, dir in vl-dirtoha
  bacula.py backup [--state-dir DIR]  run one full backup job, wait for it, print its JobId and status
  bacula.py backup-catalog            run BackupCatalog on catalog-fd (the VIP holder), print its status line
  bacula.py console CMD...            a bconsole command (e.g. "list jobs")

The catalog backup is the guide's step 5 (docs/catalog-backup.md): bacula-fd
on catalog01 and catalog02 with the same Director password, a Client
`catalog-fd` whose address is the VIP, and a BackupCatalog job whose
client-side run-before step dumps the catalog through VIP:5433 into the
directory its FileSet saves, and whose run-after step removes the dump.

The daemons are started through the lab's spawn(), so their PIDs are recorded
under STATE/pids/ and `scripts/lab down` stops them. The Director opens a
catalog connection per job (Catalog resource: no extra setting needed to
reconnect after a switchover; see tests/e2e/test_bacula.py).
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402

DIR_PW, FD_PW, SD_PW = "lab-dir-pw", "lab-fd-pw", "lab-sd-pw"
CATALOG_FD_PW = "lab-catalog-fd-pw"  # the same in bacula-fd.conf on both catalog nodes
ADDR = L.HOSTS["dirtoha"]
# What BackupCatalog saves: the dump, and the row counts the tests compare.
MAIN_TABLES = ("job", "file", "path", "filename", "jobmedia", "media", "pool", "client", "fileset")


def paths(st):
    base = st.path("dirtoha", "bacula")
    return {k: os.path.join(base, k) for k in ("work", "run", "volumes", "data", "etc", "log")} | {
        "base": base,
        # On real nodes each has its own copy at the same path; the lab's
        # nodes share one filesystem, so both FDs see this one directory.
        "catalog_fd": st.path("catalog-fd"),
        "dump": st.path("catalog-fd", "dump"),
        "dump_script": st.path("catalog-fd", "catalog-dump"),
    }


def fd_paths(st, node):
    base = st.path(node, "bacula-fd")
    return {k: os.path.join(base, k) for k in ("work", "run")} | {"base": base,
                                                                   "conf": os.path.join(base, "bacula-fd.conf")}


def configs(p):
    log = os.path.join(p["log"], "bacula.log")
    return {
        "bacula-dir.conf": f"""
Director {{
  Name = lab-dir
  DIRport = 9101
  DirAddress = {ADDR}
  QueryFile = "/etc/bacula/scripts/query.sql"
  WorkingDirectory = "{p['work']}"
  PidDirectory = "{p['run']}"
  Maximum Concurrent Jobs = 5
  Password = "{DIR_PW}"
  Messages = Daemon
}}
# The catalog through vipproxy's VIP, like the guide's Director (dirtoha).
Catalog {{
  Name = MyCatalog
  dbname = "bacula"; dbuser = "postgres"; dbpassword = "password"
  DB Address = {L.VIP}
  DB Port = {L.VIP_PORT}
}}
Client {{
  Name = lab-fd
  Address = {ADDR}
  FDPort = 9102
  Catalog = MyCatalog
  Password = "{FD_PW}"
  File Retention = 60 days
  Job Retention = 6 months
}}
Storage {{
  Name = File1
  Address = {ADDR}
  SDPort = 9103
  Password = "{SD_PW}"
  Device = FileStorage
  Media Type = File
}}
FileSet {{
  Name = "LabSet"
  Include {{
    Options {{ signature = MD5 }}
    File = "{p['data']}"
  }}
}}
Pool {{
  Name = File
  Pool Type = Backup
  Recycle = yes
  AutoPrune = yes
  Volume Retention = 365 days
  Maximum Volume Bytes = 50M
  Maximum Volumes = 20
  Label Format = "Vol-"
}}
Job {{
  Name = "LabBackup"
  Type = Backup
  Level = Full
  Client = lab-fd
  FileSet = "LabSet"
  Storage = File1
  Pool = File
  Messages = Standard
  Write Bootstrap = "{p['work']}/%c.bsr"
}}
# The guide's step 5: the catalog nodes' File Daemons answer at the VIP as
# one client, so BackupCatalog runs on whichever node holds it.
Client {{
  Name = catalog-fd
  Address = {L.VIP}
  FDPort = 9102
  Catalog = MyCatalog
  Password = "{CATALOG_FD_PW}"
  File Retention = 60 days
  Job Retention = 6 months
}}
FileSet {{
  Name = "Catalog"
  Include {{
    Options {{ signature = MD5 }}
    File = "{p['dump']}"
  }}
}}
Job {{
  Name = "BackupCatalog"
  Type = Backup
  Level = Full
  Client = catalog-fd
  FileSet = "Catalog"
  Storage = File1
  Pool = File
  Messages = Standard
  Priority = 11
  Write Bootstrap = "{p['work']}/%n.bsr"
  # On the client: dump the catalog through VIP:5433 into the FileSet's
  # directory before the files are read...
  RunScript {{
    RunsWhen = Before
    RunsOnClient = Yes
    FailJobOnError = Yes
    Command = "{p['dump_script']} {p['dump']}"
  }}
  # ...and remove it afterwards, also when the job failed.
  RunScript {{
    RunsWhen = After
    RunsOnClient = Yes
    RunsOnSuccess = Yes
    RunsOnFailure = Yes
    Command = "{p['dump_script']} --remove {p['dump']}"
  }}
}}
Job {{
  Name = "LabRestore"
  Type = Restore
  Client = lab-fd
  FileSet = "LabSet"
  Storage = File1
  Pool = File
  Messages = Standard
  Where = "{p['base']}/restore"
}}
Messages {{
  Name = Standard
  console = all, !skipped, !saved
  append = "{log}" = all, !skipped
  catalog = all
}}
Messages {{
  Name = Daemon
  console = all, !skipped, !saved
  append = "{log}" = all, !skipped
}}
""",
        "bacula-sd.conf": f"""
Storage {{
  Name = lab-sd
  SDPort = 9103
  SDAddress = {ADDR}
  WorkingDirectory = "{p['work']}"
  Pid Directory = "{p['run']}"
  Maximum Concurrent Jobs = 5
}}
Director {{
  Name = lab-dir
  Password = "{SD_PW}"
}}
Device {{
  Name = FileStorage
  Media Type = File
  Archive Device = "{p['volumes']}"
  LabelMedia = yes
  Random Access = yes
  AutomaticMount = yes
  RemovableMedia = no
  AlwaysOpen = no
}}
Messages {{
  Name = Standard
  director = lab-dir = all
}}
""",
        "bacula-fd.conf": f"""
FileDaemon {{
  Name = lab-fd
  FDport = 9102
  FDAddress = {ADDR}
  WorkingDirectory = "{p['work']}"
  Pid Directory = "{p['run']}"
  Maximum Concurrent Jobs = 5
}}
Director {{
  Name = lab-dir
  Password = "{FD_PW}"
}}
Messages {{
  Name = Standard
  director = lab-dir = all, !skipped, !restored
}}
""",
        "bconsole.conf": f"""
Director {{
  Name = lab-dir
  DIRport = 9101
  address = {ADDR}
  Password = "{DIR_PW}"
}}
""",
    }


def catalog_fd_conf(st, node):
    f = fd_paths(st, node)
    return f"""# Generated by scripts/lab.d/bacula.py: the File Daemon of {node}, one of the
# two behind the Director's client catalog-fd (the VIP). Same Director
# password on both nodes; no FDAddress: it listens on every address, so it
# answers at the VIP whenever this node holds it.
FileDaemon {{
  Name = {node}-fd
  FDport = 9102
  WorkingDirectory = "{f['work']}"
  Pid Directory = "{f['run']}"
  Maximum Concurrent Jobs = 5
}}
Director {{
  Name = lab-dir
  Password = "{CATALOG_FD_PW}"
}}
Messages {{
  Name = Standard
  director = lab-dir = all, !skipped, !restored
}}
"""


def dump_script(st):
    p = paths(st)
    return f"""#!/bin/sh
# Generated by scripts/lab.d/bacula.py. BackupCatalog's client-side steps on
# catalog-fd (whichever catalog node holds the VIP), docs/catalog-backup.md:
#   catalog-dump DIR           dump the catalog through VIP:5433 into DIR/bacula.sql
#   catalog-dump --remove DIR  remove it once the job has saved it
# pg_dump reads one snapshot (a repeatable-read transaction), so the dump is
# consistent even while the Director writes this very job's records.
set -eu
if [ "$1" = --remove ]; then
  rm -f "$2/bacula.sql" "$2/bacula.sql.part"
  echo "catalog dump removed on ${{LAB_NODE:-$(hostname)}}"
  exit 0
fi
dir=$1
umask 077
mkdir -p "$dir"
rm -f "$dir/bacula.sql" "$dir/bacula.sql.part"
PGPASSFILE={p['catalog_fd']}/pgpass PGCONNECT_TIMEOUT=5 \
  {L.PGBIN}/pg_dump --host={L.VIP} --port={L.VIP_PORT} --username=postgres --no-password \
  --dbname=bacula --file="$dir/bacula.sql.part"
mv "$dir/bacula.sql.part" "$dir/bacula.sql"
echo "catalog dumped through {L.VIP}:{L.VIP_PORT} on ${{LAB_NODE:-$(hostname)}}: $(wc -c <"$dir/bacula.sql") bytes"
"""


def start_catalog_fds(st):
    p = paths(st)
    os.makedirs(p["dump"], mode=0o700, exist_ok=True)
    with open(p["dump_script"], "w") as f:
        f.write(dump_script(st))
    os.chmod(p["dump_script"], 0o755)
    pgpass = os.path.join(p["catalog_fd"], "pgpass")
    with open(os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(f"{L.VIP}:{L.VIP_PORT}:*:postgres:{L.PGPASSWORD}\n")
    for node in L.CATALOGS:
        f = fd_paths(st, node)
        for d in (f["work"], f["run"]):
            os.makedirs(d, exist_ok=True)
        with open(f["conf"], "w") as fh:
            fh.write(catalog_fd_conf(st, node))
        # LAB_NODE: the nodes share a hostname in the lab; the dump step names its node.
        L.spawn(st, f"bacula-fd-{node}", node, ["/usr/sbin/bacula-fd", "-f", "-c", f["conf"]],
                env={"LAB_NODE": node})


def in_dirtoha(st, argv, timeout=60, input=None):
    env = dict(os.environ, PGPASSWORD=L.PGPASSWORD, PGCONNECT_TIMEOUT="3")
    return subprocess.run(L.ns_cmd(st, "dirtoha", argv), text=True, capture_output=True, timeout=timeout,
                          input=input, env=env)


def console(st, cmd, timeout=60):
    p = paths(st)
    r = in_dirtoha(st, ["bconsole", "-n", "-c", os.path.join(p["etc"], "bconsole.conf")], timeout=timeout,
                   input=cmd + "\nquit\n")
    return r.stdout


def cmd_start(st):
    p = paths(st)
    for k in ("work", "run", "volumes", "data", "etc", "log", "catalog_fd"):
        os.makedirs(p[k], exist_ok=True)
    for i in range(20):
        with open(os.path.join(p["data"], f"file{i:02d}.txt"), "w") as f:
            f.write(f"lab file {i}\n" * (50 * (i + 1)))
    for name, text in configs(p).items():
        with open(os.path.join(p["etc"], name), "w") as f:
            f.write("# Generated by scripts/lab.d/bacula.py\n" + text)
    psql = [f"{L.PGBIN}/psql", "-X", "-At", "-h", L.VIP, "-p", str(L.VIP_PORT), "-U", "postgres"]
    r = in_dirtoha(st, psql + ["-d", "postgres", "-c", "select 1 from pg_database where datname = 'bacula'"])
    if r.stdout.strip() != "1":
        r = in_dirtoha(st, psql + ["-d", "postgres", "-c", "create database bacula encoding 'SQL_ASCII' "
                                   "lc_collate 'C' lc_ctype 'C' template template0"])
        if r.returncode != 0:
            raise L.Failure(f"create database bacula through the VIP: {r.stderr}")
        r = in_dirtoha(st, ["env", "db_name=bacula", "/usr/share/bacula-director/make_postgresql_tables",
                            "-h", L.VIP, "-p", str(L.VIP_PORT), "-U", "postgres", "-q"], timeout=120)
        if r.returncode != 0:
            raise L.Failure(f"make_postgresql_tables through the VIP: {r.stdout}{r.stderr}")
    n = in_dirtoha(st, psql + ["-d", "bacula", "-c", "select count(*) from information_schema.tables "
                               "where table_schema = 'public'"]).stdout.strip()
    L.log(f"catalog: {n} tables in database bacula, created through {L.VIP}:{L.VIP_PORT}")
    for name, binary in (("bacula-sd", "bacula-sd"), ("bacula-fd", "bacula-fd"), ("bacula-dir", "bacula-dir")):
        L.spawn(st, name, "dirtoha", [f"/usr/sbin/{binary}", "-f", "-c", os.path.join(p["etc"], name + ".conf")])
    start_catalog_fds(st)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # Bacula's own daemons only: a lab daemon a fault scenario killed
        # (scripts/demo's VIP holder death) is not Bacula's business.
        for n in ("bacula-sd", "bacula-fd", "bacula-dir") + tuple(f"bacula-fd-{h}" for h in L.CATALOGS):
            pid, ok = L.recorded(st, n)
            if not ok:
                raise L.Failure(f"{n} (pid {pid}) exited; see {st.path('logs', n + '.log')}\n" + L.tail(st, n))
        out = console(st, "status director", timeout=20)
        if "Daemon started" in out:
            L.log("Director, SD and FD up in vl-dirtoha")
            return 0
        time.sleep(0.5)
    raise L.Failure("bconsole cannot reach the Director; see logs/bacula-dir.log")


def cmd_backup(st):
    out = console(st, "run job=LabBackup level=Full yes")
    m = re.search(r"JobId=(\d+)", out)
    if not m:
        raise L.Failure(f"job not queued: {out}")
    jobid = m.group(1)
    out = console(st, f"wait jobid={jobid}", timeout=180)
    status = console(st, f"list jobid={jobid}")
    m2 = re.search(r"\|\s*" + jobid + r"\s*\|.*\|\s*([A-Za-z])\s*\|\s*$", status, re.M)
    print(f"JobId={jobid} JobStatus={m2.group(1) if m2 else '?'}")
    return 0 if m2 and m2.group(1) == "T" else 1


def job_row(st, jobid):
    """(JobFiles, JobBytes, JobStatus) from `list jobid=N`, or None."""
    out = console(st, f"list jobid={jobid}")
    m = re.search(r"^\|\s*" + str(jobid) + r"\s*\|.*\|\s*([\d,]+)\s*\|\s*([\d,]+)\s*\|\s*([A-Za-z])\s*\|\s*$",
                  out, re.M)
    if not m:
        return None
    return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", "")), m.group(3)


def run_job(st, job, timeout=180):
    out = console(st, f"run job={job} yes")
    m = re.search(r"JobId=(\d+)", out)
    if not m:
        raise L.Failure(f"{job} not queued: {out}")
    jobid = int(m.group(1))
    console(st, f"wait jobid={jobid}", timeout=timeout)
    return jobid


def backup_catalog(st):
    """Runs BackupCatalog once and waits for it. Returns a dict: jobid,
    status (Bacula's JobStatus letter), files, bytes, node (the catalog node
    whose FD ran it, from the run-before step's output in the job log), line."""
    jobid = run_job(st, "BackupCatalog")
    row = job_row(st, jobid)
    log = console(st, f"list joblog jobid={jobid}")
    m = re.search(r"(catalog0\d-fd) JobId \d+: ClientBeforeJob: catalog dumped through [\d.:]+ on (catalog0\d): "
                  r"(\d+) bytes", log)
    files, nbytes, status = row if row else (None, None, "?")
    res = {"jobid": jobid, "status": status, "files": files, "bytes": nbytes,
           "fd": m.group(1) if m else None, "node": m.group(2) if m else None,
           "dump_bytes": int(m.group(3)) if m else None, "log": log}
    res["line"] = (f"BackupCatalog JobId={jobid}: {'Backup OK' if status == 'T' else 'JobStatus ' + status} "
                   f"(JobStatus {status}); client catalog-fd ({L.VIP}) answered by {res['fd'] or '?'}; catalog "
                   f"dumped through {L.VIP}:{L.VIP_PORT} ({res['dump_bytes'] if m else '?'} bytes), "
                   f"{files} files / {nbytes} bytes saved")
    return res


def restore_dump(st, jobid, where):
    """Restores BackupCatalog job `jobid` to the Director host's FD (lab-fd)
    under `where`; returns the restored dump's path."""
    out = console(st, f"restore jobid={jobid} client=catalog-fd restoreclient=lab-fd where={where} all done yes",
                  timeout=60)
    m = re.search(r"JobId=(\d+)", out)
    if not m:
        raise L.Failure(f"restore of job {jobid} not queued: {out}")
    rid = int(m.group(1))
    console(st, f"wait jobid={rid}", timeout=180)
    row = job_row(st, rid)
    if not row or row[2] != "T":
        raise L.Failure(f"restore job {rid} of BackupCatalog {jobid} ended {row}")
    path = where + os.path.join(paths(st)["dump"], "bacula.sql")
    if not os.path.exists(path):
        raise L.Failure(f"restore job {rid} ended OK but {path} is missing")
    return path


def psql_vip(st, db, sql, timeout=60):
    r = in_dirtoha(st, [f"{L.PGBIN}/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", L.VIP, "-p", str(L.VIP_PORT),
                        "-U", "postgres", "-d", db, "-c", sql], timeout=timeout)
    if r.returncode != 0:
        raise L.Failure(f"psql {db} through the VIP: {r.stderr.strip()}")
    return r.stdout.strip()


def table_counts(st, db):
    sql = " union all ".join(f"select '{t}', count(*) from {t}" for t in MAIN_TABLES)
    return {k: int(v) for k, v in (ln.split("|") for ln in psql_vip(st, db, sql).splitlines())}


def load_dump(st, path, db):
    """Loads a restored dump into a new scratch database through the VIP."""
    psql_vip(st, "postgres", f"drop database if exists {db}")
    psql_vip(st, "postgres", f"create database {db} encoding 'SQL_ASCII' lc_collate 'C' lc_ctype 'C' "
                             "template template0")
    r = in_dirtoha(st, [f"{L.PGBIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", L.VIP, "-p",
                        str(L.VIP_PORT), "-U", "postgres", "-d", db, "-f", path], timeout=300)
    if r.returncode != 0:
        raise L.Failure(f"loading {path} into {db}: {r.stderr.strip()[-500:]}")


def demo_catalog_backup(state_dir):
    """scripts/demo: starts Bacula on the lab (catalog created through the
    VIP, FDs on the catalog nodes) and runs BackupCatalog once."""
    st = L.State(state_dir)
    cmd_start(st)
    return backup_catalog(st)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["start", "backup", "backup-catalog", "console"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("--state-dir", default=os.environ.get("VIPPROXY_LAB_STATE", L.DEFAULT_STATE))
    a = ap.parse_args()
    st = L.State(a.state_dir)
    if not st.data:
        print(f"no lab in {st.dir}", file=sys.stderr)
        return 1
    try:
        if a.cmd == "start":
            return cmd_start(st)
        if a.cmd == "backup":
            return cmd_backup(st)
        if a.cmd == "backup-catalog":
            res = backup_catalog(st)
            print(res["line"])
            return 0 if res["status"] == "T" else 1
        print(console(st, " ".join(a.args)))
        return 0
    except L.Failure as e:
        print(f"bacula.py: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
