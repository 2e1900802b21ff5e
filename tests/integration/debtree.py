"""The Debian 12 tree the package tests install the .deb into, and the
packages they install: shared by test_systemd_nspawn.py (boots the tree with
systemd-nspawn) and test_ops_package.py (dpkg in a chroot on an overlay of
it). Neither ever installs into this machine's own root.

The tree is made once per build directory with debootstrap (minbase, plus
systemd, dbus, iproute2 and the .deb's Depends) from Debian's archive,
cached under BUILD/nspawn/ keyed by its package list, and never written
after: users mount an overlay on it or boot it with --volatile=overlay.
"""
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import time

from netns import log

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the container needs besides the package's own Depends: an init, the
# bus systemctl talks through, and `ip`.
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "iproute2"]


def sh(argv, check=True, timeout=120, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def deb_depends(deb):
    """Real package names for the .deb's Depends (first of each alternative,
    no versions). dpkg-shlibdeps may name a virtual package (libspdlog1.10's
    shlibs say libspdlog1.10-fmt9), which debootstrap cannot resolve: it is
    replaced by the package on this build host that provides it (the binary
    was linked against it, so it is installed here)."""
    field = sh(["dpkg-deb", "-f", deb, "Depends"]).stdout.strip()
    providers = {}
    for line in sh(["dpkg-query", "-W", "-f=${Package}\t${Provides}\n"]).stdout.splitlines():
        pkg, _, provides = line.partition("\t")
        for virtual in provides.split(","):
            providers.setdefault(virtual.strip().split(" ")[0], pkg)
    names = []
    for dep in field.split(","):
        name = dep.split("|")[0].strip().split(" ")[0].split(":")[0]
        if not name:
            continue
        status = sh(["dpkg-query", "-W", "-f=${Status}", name], check=False).stdout
        if not status.endswith(" installed") and name in providers:
            name = providers[name]
        names.append(name)
    return names


def tree_path(packages, build):
    key = hashlib.sha256(f"{SUITE} {MIRROR} {' '.join(sorted(set(packages)))}".encode()).hexdigest()[:12]
    return os.path.join(build, "nspawn", f"{SUITE}-{key}")


def ensure_tree(packages, build):
    """The cached Debian 12 tree with `packages`, made once with debootstrap.

    Its directory name carries a hash of the package list, so a package that
    gains a dependency gets a new tree instead of a stale one. It is built
    beside its final name and renamed when complete: an interrupted
    debootstrap never leaves a tree that looks ready."""
    packages = sorted(set(packages))
    tree = tree_path(packages, build)
    cache = os.path.dirname(tree)
    if os.path.isdir(tree):
        log(f"tree: {tree} (cached)")
        return tree
    os.makedirs(cache, exist_ok=True)
    partial = tree + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    log(f"tree: debootstrap {SUITE} with {','.join(packages)} into {partial} (once per build dir)")
    t0 = time.monotonic()
    r = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(packages), SUITE, partial,
                        MIRROR], capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"debootstrap failed ({r.returncode}); it needs {MIRROR}:\n"
                           f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    # Nothing in the tree is ever started on the host; the booted container
    # needs no getty on a console nobody reads.
    for unit in ("console-getty.service", "getty@.service", "apt-daily.timer", "apt-daily-upgrade.timer"):
        link = os.path.join(partial, "etc/systemd/system", unit)
        if not os.path.lexists(link):
            os.symlink("/dev/null", link)
    os.rename(partial, tree)
    log(f"tree: made in {time.monotonic() - t0:.0f} s")
    for old in glob.glob(os.path.join(cache, f"{SUITE}-*")):
        if old != tree and os.path.isdir(old):
            shutil.rmtree(old, ignore_errors=True)  # an older package list's tree: ours, under BUILD
    return tree


def newer_package(deb, outdir, tmp):
    """`deb` with "+upgrade" appended to its version (dpkg orders it after
    the original): the package of the next release, for upgrade tests."""
    tree = os.path.join(tmp, "newer")
    sh(["dpkg-deb", "-R", deb, tree])
    control = os.path.join(tree, "DEBIAN", "control")
    with open(control) as f:
        text = f.read()
    version = re.search(r"(?m)^Version: (\S+)$", text).group(1)
    with open(control, "w") as f:
        f.write(text.replace(f"Version: {version}\n", f"Version: {version}+upgrade\n"))
    name = f"vipproxy_{version}+upgrade_amd64.deb"
    sh(["dpkg-deb", "--root-owner-group", "-b", tree, os.path.join(outdir, name)])
    shutil.rmtree(tree)
    return name


def tree_for(deb, build):
    """The cached tree for `deb` (made now if missing). One lock per build
    dir: two tests starting at once do not debootstrap into the same place,
    and the second finds the tree the first made."""
    cache = os.path.join(build, "nspawn")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return ensure_tree(BASE_PACKAGES + deb_depends(deb), build)


def have_tree(deb, build):
    """Whether the tree for `deb` is cached already (no debootstrap needed)."""
    return os.path.isdir(tree_path(BASE_PACKAGES + deb_depends(deb), build))
