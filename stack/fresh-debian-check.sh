#!/usr/bin/env bash
# Checks the README's promise for a fresh Debian 12 machine, by hand (it needs root and ~1.5 GB, so it is
# not part of `npm test` or CI): builds a minimal Debian 12 (debootstrap --variant=minbase: no Java, no
# Maven, no ClickHouse, no Python) in a temporary folder, copies in only this machine's node and npm, clones
# the committed HEAD into it and runs `npm test -- smoke` there as root, on ports of its own. The stack must
# install Java 17, Maven and clickhouse-server with apt, fetch the jars from Maven Central, run Apicurio 2.6
# on Debian's Java 17 (no Java 21 is there), and pass. About 3 minutes.
#
#   sudo bash stack/fresh-debian-check.sh            # then: the same with KEEP=1 to look around afterwards
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d "${TMPDIR:-/tmp}/fresh-debian.XXXXXX")"
R="$work/root"
say() { printf '[fresh-debian] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot, mount)"; exit 2; }
[ -d "$repo/node_modules" ] || { say "run npm ci in $repo first (the check reuses its node_modules)"; exit 2; }

cleanup() {
  local rc=$?
  for m in dev/pts dev proc work/repo/node_modules; do
    mountpoint -q "$R/$m" 2>/dev/null && umount "$R/$m"
  done
  if [ "${KEEP:-0}" = 1 ]; then say "kept $R"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap (Debian)"
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends debootstrap >/dev/null
fi
say "debootstrap bookworm (minbase) into $R"
debootstrap --variant=minbase bookworm "$R" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; exit 1; }

# Node 20 is the one thing the README asks for that Debian 12 does not ship; take this machine's.
cp "$(command -v node)" "$R/usr/bin/node"
mkdir -p "$R/usr/lib/node_modules"
cp -a "$(npm root -g)/npm" "$R/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/bin/npx"
cp /etc/resolv.conf "$R/etc/resolv.conf"
# A network whose HTTPS egress has its own CA (as here) needs it on every machine; the ca-certificates
# package that apt installs with Java picks it up from this folder, and Java's trust store with it.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  mkdir -p "$R/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/"
fi

git clone -q "$repo" "$R/work/repo"
mkdir -p "$R/work/repo/node_modules"
mount --bind "$repo/node_modules" "$R/work/repo/node_modules"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount --bind /dev/pts "$R/dev/pts"

say "npm test -- smoke inside it ($(git -C "$R/work/repo" log --oneline -1))"
chroot "$R" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  STACK_KAFKA_PORT=39092 STACK_KAFKA_CONTROLLER_PORT=39093 STACK_REGISTRY_PORT=38081 \
  STACK_REGISTRY_MANAGEMENT_PORT=38091 STACK_CLICKHOUSE_HTTP_PORT=38123 STACK_CLICKHOUSE_TCP_PORT=39000 \
  /bin/bash -c 'cd /work/repo && npm test -- smoke'
say "passed: $(chroot "$R" /bin/sh -c 'cd /work/repo && cat .stack/registry/flavor') on $(chroot "$R" java -version 2>&1 | head -1)"
