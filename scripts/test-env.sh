#!/usr/bin/env bash
# What the integration tests drive, installed and started on demand, printed as shell exports for `make test`:
# a PostgreSQL on loopback, headless Chromium (Debian's package) and a virtual environment with the official
# `openai` Python client, the client libraries people use for structured output on top of it (instructor,
# langchain-openai), and `websockets` (to drive Chromium over the DevTools protocol), all from PyPI. Progress goes to
# standard error.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

need=()
command -v chromium >/dev/null || need+=(chromium)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

venv="$root/.venv-test"
if ! "$venv/bin/python" -c "import openai, websockets, instructor, langchain_openai" 2>/dev/null; then
  echo "installing the openai client, instructor, langchain-openai and websockets (to drive Chromium) into .venv-test" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q "openai>=1.40" "websockets>=12" "instructor>=1.7" "langchain-openai>=0.3" >&2
fi

postgres_url="$("$root/scripts/start-postgres.sh")"
echo "export MICROSCALE_TEST_POSTGRES_URL='$postgres_url'"
echo "export MICROSCALE_TEST_CHROMIUM='$(command -v chromium)'"
echo "export MICROSCALE_TEST_PYTHON='$venv/bin/python'"
echo "export MICROSCALE_REQUIRE_INTEGRATION=1"
