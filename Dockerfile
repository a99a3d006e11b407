# The pipeline's one image: the ingest API, the query API or a worker, one process per container, chosen by the
# command (deploy/entrypoint.sh): `ingest`, `query`, `worker`, or the `keys` and `retention` commands.
# No Docker engine runs on this project's machines: `npm test` lints this file (deploy/dockerfile.test.ts) and
# builds its tree without an engine, then runs the pipeline from it (deploy/image.int.test.ts); the image itself is
# neither built nor run here.

# Node 24 runs the TypeScript in src/ as is (type stripping): no build step. The base image's own Node, not the
# npm `node` package that `npm start` uses (a dev dependency). A major tag takes Node's and Debian's fixes when
# rebuilt; pin a digest (node:24-bookworm-slim@sha256:...) for builds that must repeat exactly.
ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies only: no chdb (the dev stack's ClickHouse), pm2, the npm `node` package or test tools.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Not `npm ci`: it refuses this lock, which lacks the dev dependency chdb's platform builds the registry does not
# serve (scripts/with-deps.sh); `npm install --no-save` installs the locked versions and leaves the lock as is.
# No install scripts: no production dependency has one.
RUN npm install --omit=dev --no-save --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# The APIs listen on every address of the container (HOST's default, 127.0.0.1, would reach nobody). The metrics
# ports stay on METRICS_HOST's loopback unless it is set: they need no key (the manifests and compose set 0.0.0.0).
ENV HOST=0.0.0.0
# The keys file's place in a container: Kubernetes mounts the keys Secret here, docker-compose a volume.
ENV API_KEYS_FILE=/keys/keys.json
WORKDIR /app
# Owned by root and read-only to the app's user: a compromised process cannot change the code it runs.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY deploy/entrypoint.sh ./deploy/entrypoint.sh
# The keys file's directory, the user's own so `keys create` can write there (a volume mounted on it takes it over).
RUN mkdir -m 0700 /keys && chown node:node /keys
# The official image's unprivileged user (uid 1000).
USER node
# Ingest API, query API; metrics of each: ingest API, worker, query API (the ports the configuration gives them).
EXPOSE 3000 3001 9464 9474 9484
# No HEALTHCHECK: what to probe depends on the command (an API's /healthz on PORT, a worker's on its metrics
# port); Kubernetes's probes and docker-compose's healthchecks say it per process.
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
