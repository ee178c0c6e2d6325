#!/usr/bin/env bash
# Creates .venv at the repository root with the pinned test-only Python tools (test/python/requirements.txt).
# Idempotent: re-installs only when the requirements changed since the last run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
req="$root/test/python/requirements.txt"
venv="$root/.venv"
stamp="$venv/.requirements.sha1"
want="$(sha1sum "$req" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "python3 venv is missing: apt-get install -y python3-venv" >&2
  exit 1
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
