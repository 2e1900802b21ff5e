# Sourced (not run) by the installers scripts/deps, scripts/lab.d/packages and
# scripts/lab.d/bacula-packages, after their `set -euo pipefail`, by a path
# relative to the installer's real location (a symlink to it, or a copy with
# scripts/lib beside it as tests/integration/test_deps_fresh.py makes, works):
#
#   . "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/install-packages.sh"
#   install_packages [--announce WHO] [--debconf SELECTION]... NAME PKG...
#
# Installs the Debian packages PKG... that are not installed, with
# --no-install-recommends. Nothing missing: returns at once (no apt-get at
# all). Not root with something missing: says which and that it needs root,
# and exits 1 before touching anything. NAME starts its messages ("NAME:
# missing ..."); WHO (default NAME) starts the "installing ..." line. Each
# debconf SELECTION line is given to debconf-set-selections before apt-get.
# Installs the EXIT trap that puts the machine's policy-rc.d back.

install_packages() {
  local announce="" name p
  local -a debconf=() missing=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --announce) announce=$2; shift 2 ;;
      --debconf) debconf+=("$2"); shift 2 ;;
      *) break ;;
    esac
  done
  name=$1; shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "$name: missing ${missing[*]}; installing them needs root (run it as root)" >&2
    exit 1
  fi

  echo "${announce:-$name}: installing ${missing[*]}" >&2
  # One installer at a time (scripts/test and scripts/lab up may run at once):
  # a second one saved the first one's temporary policy-rc.d as the machine's
  # and put it back after the first had removed it, leaving `exit 101` for
  # good (every later package install then started no service). apt-get runs
  # without the lock's descriptor (9>&-): nothing an install leaves running
  # holds it.
  exec 9>/run/lock/vipproxy-installers.lock
  if ! flock -n 9; then
    echo "$name: waiting for another vipproxy installer to finish" >&2
    flock 9
  fi
  # Daemon packages (postgresql, haproxy, keepalived, bacula) must not start
  # services in the root namespace while installing: policy-rc.d answering
  # 101 forbids it. Globals, not locals: the EXIT trap runs after this
  # function has returned.
  _install_packages_policy=/usr/sbin/policy-rc.d
  _install_packages_saved=""
  if [ -e "$_install_packages_policy" ]; then
    _install_packages_saved=$(mktemp)
    cp -p "$_install_packages_policy" "$_install_packages_saved"
  fi
  trap _install_packages_restore EXIT
  printf '#!/bin/sh\nexit 101\n' >"$_install_packages_policy"; chmod 755 "$_install_packages_policy"
  export DEBIAN_FRONTEND=noninteractive
  for p in "${debconf[@]}"; do
    echo "$p" | debconf-set-selections
  done
  # Fresh lists first: old ones name versions the archive has dropped (404
  # at download).
  apt-get update -qq 9>&-
  apt-get install -y -qq --no-install-recommends "${missing[@]}" 9>&-
}

_install_packages_restore() {
  if [ -n "$_install_packages_saved" ]; then
    mv "$_install_packages_saved" "$_install_packages_policy"
  else
    rm -f "$_install_packages_policy"
  fi
}
