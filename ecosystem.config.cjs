// pm2 apps of the pipeline. `npm start` runs this with pm2-runtime after the engines are up; on a host of your own,
// point KAFKA_BROKERS, VALKEY_URL and CLICKHOUSE_URL at your clusters and run it the same way (pm2 is a dev
// dependency: `npm install`, not --omit=dev). In containers there is no pm2: the image runs one process each
// (Dockerfile, deploy/kubernetes/).
// Ingest and queries run in processes of their own (docs/DESIGN.md, "Queries cannot starve ingest").
const cores = require("node:os").availableParallelism();
const apiInstances = Number(process.env.API_INSTANCES ?? cores);
// Absolute, from the repository root: an API process reads the same keys file whatever its working directory
// (a relative path resolved elsewhere would name a file that is not there, and the API would wait for it).
const keysFile = require("node:path").resolve(__dirname, process.env.API_KEYS_FILE || ".data/dev/keys.json");
const queryInstances = Number(process.env.QUERY_INSTANCES ?? 1);
const queryPort = process.env.QUERY_PORT ?? "3001";
// A base of its own, past the ingest API's (9464 + API_INSTANCES) and the workers' (9474 + WORKER_INSTANCES).
const queryMetricsPort = process.env.QUERY_METRICS_PORT ?? "9484";

module.exports = {
  apps: [
    {
      // The ingest API: POST /event, /events, GET /pixel.gif, /sdk.js on PORT (3000).
      name: "api",
      script: "src/api/main.ts",
      // A 32 MB young generation instead of V8's 64 MB here: in an alternated /events benchmark it used
      // 50-65 MB less memory for 5-12% more events/s (docs/BENCHMARKS-ARCHIVE.md). The benchmarks read this line.
      node_args: ["--max-semi-space-size=32"],
      exec_mode: "cluster",
      instances: apiInstances,
      // No @pm2/io in the process: it wraps every HTTP request to time it for pm2's own monitor, which cost
      // /event ~1 µs of CPU and ~2% of its requests/s (docs/BENCHMARKS-ARCHIVE.md); the app's metrics are at /metrics.
      pmx: false,
      // Each process enforces its share of every rate limit (docs/API.md, "Rate limits").
      env: { API_ROLE: "ingest", API_INSTANCES: String(apiInstances), API_KEYS_FILE: keysFile },
      // Time to finish in-flight requests and flush the producer after SIGTERM.
      kill_timeout: 10_000,
      // A process that cannot start (a port taken, a config error) is restarted after 100 ms, then ever later, up
      // to 15 s apart: a crash loop must not take the CPU from the processes still serving. A keys file gone is no
      // exit: the process waits for it, listening on no port (src/usable-file.ts; npm run test:hostile, "missing
      // keys file, restart"). pm2 starts over from 100 ms once a process has stayed up 30 s.
      exp_backoff_restart_delay: 100,
      // A guard against leaks, not a budget: under sustained /events load V8 grows the heap lazily to
      // ~450 MB RSS (docs/BENCHMARKS-ARCHIVE.md), which a lower limit would answer with restarts.
      max_memory_restart: "768M",
    },
    {
      // The query API: GET /stats*, the dashboard at /, on QUERY_PORT (3001). Its processes lower their own CPU
      // priority at start (QUERY_NICE), so under contention the kernel favours ingest and the workers.
      name: "query",
      script: "src/api/main.ts",
      exec_mode: "cluster",
      instances: queryInstances,
      pmx: false,
      // API_INSTANCES is the number of processes sharing this app's rate limits: here, the query app's.
      env: {
        API_ROLE: "query",
        PORT: queryPort,
        API_METRICS_PORT: queryMetricsPort,
        API_INSTANCES: String(queryInstances),
        API_KEYS_FILE: keysFile,
      },
      kill_timeout: 10_000,
      exp_backoff_restart_delay: 100,
      max_memory_restart: "768M",
    },
    {
      name: "worker",
      script: "src/worker/main.ts",
      exec_mode: "fork",
      pmx: false,
      // Each instance's NODE_APP_INSTANCE names its slot: restarted after a crash, it takes its dead
      // predecessor's claims and partitions over at once (docs/DESIGN.md, "Worker names").
      instances: Number(process.env.WORKER_INSTANCES ?? cores),
      // Time to finish the current batch, commit and leave the group.
      kill_timeout: 30_000,
      max_memory_restart: "600M",
    },
  ],
};
