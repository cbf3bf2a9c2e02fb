#!/usr/bin/env bash
# Create the bench-only virtual environment for the NIST AFL-agent peer.
#
#   bash bench/peers/setup_afl.sh
#
# The venv lives in bench/.venv-afl (gitignored). AFL-agent is never a dependency of tandem:
# only bench/peers/afl_peer.py runs inside this environment. Idempotent: a second run that finds
# the pinned version installed does nothing. Prints one short line.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/.." && pwd)/.venv-afl"
py="${PYTHON:-python3}"
pin="afl-agent==1.3.1"
# what the find_boundaries pipeline imports (AFL.double_agent pulls these in; listed so a bare
# afl-agent install that leaves one out still gives a working peer)
deps=(scikit-learn xarray scipy numpy pandas)

if [ -x "$venv/bin/python" ] && "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if m.version("afl-agent") == "1.3.1" else 1)
PY
then
    echo "afl peer venv ready: $venv (afl-agent 1.3.1)"
    exit 0
fi

start=$(date +%s)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! {
    "$py" -m venv "$venv" &&
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$pin" "${deps[@]}" &&
    "$venv/bin/python" -c "import AFL.double_agent, sklearn, xarray"
} >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "afl peer venv: install FAILED (see above)" >&2
    exit 1
fi
secs=$(( $(date +%s) - start ))
size=$(du -sh "$venv" | cut -f1)
echo "afl peer venv installed in ${secs}s, ${size}: $venv (afl-agent 1.3.1)"
