#!/usr/bin/env bash
# Set up and run the whole test suite the way CI does: a virtualenv with the project
# and its test extras, the real services from infra/services.sh, then pytest.
# The services are stopped again on exit, whether the tests pass or not, and their data
# (the topics and objects the tests made) is deleted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
# Quiet unless it fails: the install log is shown then.
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q -e '.[test]'; } >.venv/install.log 2>&1; then
  cat .venv/install.log >&2
  exit 1
fi
export PYTHON="$PWD/.venv/bin/python"

# The FinOps Foundation's focus-validator pins numpy 1.x and pandas: it gets a venv of its
# own. (1.0.0 breaks with multimethod >= 1.11, hence the pin.)
if [[ ! -x .venv-focus/bin/focus-validator ]]; then
  "$PY" -m venv .venv-focus
  .venv-focus/bin/python -m pip install -q focus-validator==1.0.0 'multimethod<1.11' \
    >.venv-focus/install.log 2>&1 || { cat .venv-focus/install.log >&2; exit 1; }
fi
export FOCUS_VALIDATOR="$PWD/.venv-focus/bin/focus-validator"

# promtool (Debian's prometheus package) checks the alert rules; install it where the
# machine allows (root with apt), so that check runs instead of failing for want of it.
if ! command -v promtool >/dev/null && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  # No daemon is wanted, only the tool: keep the package's service from starting.
  { DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends \
      prometheus || { apt-get update -q && DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
      apt-get install -y -q --no-install-recommends prometheus; }; } >.venv/apt.log 2>&1 ||
    { cat .venv/apt.log >&2; exit 1; }
fi

trap 'infra/services.sh wipe || true' EXIT
services_env="$(infra/services.sh up)"
eval "$services_env"
export KAFKA_BOOTSTRAP AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY BURNWATCH_S3_BUCKET

.venv/bin/ruff check --quiet .
.venv/bin/python -m pytest "$@"
