#!/bin/sh
# The image's entry (Dockerfile): runs one of the pipeline's processes, chosen by the first argument. `exec`
# makes it the container's main process, so SIGTERM reaches it and it stops gracefully.
set -eu
cd "$(dirname "$0")/.."

usage() {
  cat >&2 <<'USAGE'
usage: ingest | query | worker | keys ARGS... | dlq ARGS... | retention
  ingest     the ingest API (POST /event, /events, GET /pixel.gif, /sdk.js) on PORT (3000)
  query      the query API (GET /stats*, the dashboard) on QUERY_PORT (3001), metrics on QUERY_METRICS_PORT (9484)
  worker     a worker: Kafka -> dedup (Valkey) -> ClickHouse; provisions topics and tables at start
  keys       the keys CLI on API_KEYS_FILE (/keys/keys.json): create, list, revoke
  dlq        the dead letters: list, show, replay (npm run dlq's commands)
  retention  sets the tables' TTL to RETENTION_DAYS
Configuration: environment variables (docs/CONFIGURATION.md).
USAGE
}

command=${1-}
if [ "$#" -gt 0 ]; then shift; fi
only() {
  if [ "$#" -gt 0 ]; then
    echo "$command takes no arguments (got: $*)" >&2
    usage
    exit 2
  fi
}

case $command in
ingest)
  only "$@"
  export API_ROLE=ingest
  # A 32 MB young generation, as ecosystem.config.cjs gives the ingest API (docs/BENCHMARKS-ARCHIVE.md).
  exec node --max-semi-space-size=32 src/api/main.ts
  ;;
query)
  only "$@"
  # Its ports as ecosystem.config.cjs gives the query app, so they are the same as under `npm start`.
  export API_ROLE=query PORT="${QUERY_PORT:-3001}" API_METRICS_PORT="${QUERY_METRICS_PORT:-9484}"
  exec node src/api/main.ts
  ;;
worker)
  only "$@"
  exec node src/worker/main.ts
  ;;
keys) exec node src/auth/cli.ts "$@" ;;
dlq) exec node src/dlq/cli.ts "$@" ;;
retention)
  only "$@"
  exec node src/storage/retention-cli.ts
  ;;
help | -h | --help)
  usage
  exit 0
  ;;
*)
  if [ -n "$command" ]; then echo "unknown command: $command" >&2; fi
  usage
  exit 2
  ;;
esac
