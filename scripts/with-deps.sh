#!/usr/bin/env bash
# Installs what is missing (npm packages, including the project's own Node 24), then runs the
# given command with node_modules/.bin first on PATH, so `node` is Node 24 whatever the system has.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing npm dependencies (Node 24, engines' clients, tools) ..." >&2
  # Not `npm ci`: it refuses this lock because chdb names optional builds for other platforms that the
  # registry does not serve; `npm install --no-save` installs exactly the locked versions and leaves the lock as is.
  npm install --no-save --no-audit --no-fund --loglevel=error >&2 || {
    echo "[setup] npm install failed: see the npm log above; the npm registry must be reachable" >&2
    exit 1
  }
fi
export PATH="$PWD/node_modules/.bin:$PATH"
exec "$@"
