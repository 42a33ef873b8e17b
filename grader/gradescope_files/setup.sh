#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image: the CPU build of
# torch first (as `make` does), then the grader, into /autograder/venv.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    apt-get update -qq
    apt-get install -y -qq python3.11 python3.11-venv
    PYTHON=python3.11
fi
"$PYTHON" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet --upgrade pip
"$ROOT/venv/bin/python" -m pip install --quiet torch==2.13.0
"$ROOT/venv/bin/python" -m pip install --quiet -e "$ROOT/source"
