import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { ensurePrometheus } from "../../stack/prometheus.ts";

const run = promisify(execFile);

/** Every metric family the processes export (the metrics issue's list), each of which needs a panel. */
const METRICS = [
  "http_request_duration_seconds",
  "impressions_received_total",
  "impressions_rejected_total",
  "impressions_traffic_total",
  "ingest_unavailable_total",
  "kafka_produce_duration_seconds",
  "kafka_producer_buffered_bytes",
  "impressions_consumed_total",
  "impressions_counted_total",
  "impressions_duplicates_total",
  "impressions_replayed_total",
  "impressions_dead_lettered_total",
  "worker_batch_events",
  "worker_step_duration_seconds",
  "worker_last_commit_timestamp_seconds",
  "worker_starved_restarts_total",
  "impressions_consumer_lag",
  "impressions_consumer_lag_total",
  "process_cpu_seconds_total",
  "nodejs_eventloop_lag_seconds",
  "up",
];
/** A histogram is queried by its series' names. */
const HISTOGRAM_SERIES = ["_bucket", "_count", "_sum"];

/** The exit code and the whole output, whatever the code, so that a failure shows what the tool said. */
async function exec(command: string, args: string[]): Promise<{ code: number | string; output: string }> {
  try {
    const { stdout, stderr } = await run(command, args, { cwd: repoRoot });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    return { code: e.code ?? "failed", output: `${e.stdout ?? ""}${e.stderr ?? ""}` || e.message };
  }
}

describe("deploy/prometheus", () => {
  let promtool: string;
  beforeAll(async () => {
    ({ promtool } = await ensurePrometheus());
  });

  // check config also checks the rule files each one loads.
  it.each(["npm-start.yml", "prometheus.yml"])("promtool check config %s", async (file) => {
    const { code, output } = await exec(promtool, ["check", "config", `deploy/prometheus/${file}`]);
    expect(code, output).toBe(0);
  });

  it("promtool check rules alerts.yml", async () => {
    const { code, output } = await exec(promtool, ["check", "rules", "deploy/prometheus/alerts.yml"]);
    expect(code, output).toBe(0);
  });

  it("promtool test rules alerts.test.yml: each alert fires on trouble and not on a healthy series", async () => {
    const { code, output } = await exec(promtool, ["test", "rules", "deploy/prometheus/alerts.test.yml"]);
    expect(code, output).toBe(0);
  });
});

describe("deploy/grafana", () => {
  interface Panel {
    title?: string;
    datasource?: { uid?: string };
    targets?: { expr?: string }[];
  }
  const dashboard = JSON.parse(readFileSync(join(repoRoot, "deploy/grafana/dashboards/impressions.json"), "utf8")) as {
    panels: Panel[];
  };

  it("every panel has a title and a query, on the provisioned data source", () => {
    const datasources = readFileSync(join(repoRoot, "deploy/grafana/provisioning/datasources/prometheus.yml"), "utf8");
    const uid = /^\s*uid:\s*(\S+)/m.exec(datasources)?.[1];
    expect(uid).toBeDefined();
    expect(dashboard.panels.length).toBeGreaterThan(0);
    for (const panel of dashboard.panels) {
      expect(panel.title, JSON.stringify(panel)).toBeTruthy();
      expect(panel.targets?.length, `${panel.title}: no target`).toBeGreaterThan(0);
      expect(
        panel.targets?.every((target) => target.expr?.trim()),
        `${panel.title}: a target without expr`,
      ).toBe(true);
      expect(panel.datasource?.uid, `${panel.title}: data source`).toBe(uid);
    }
  });

  it("every metric family has a panel", () => {
    const names = new Set(
      dashboard.panels.flatMap((panel) =>
        (panel.targets ?? []).flatMap((t) => t.expr?.match(/[a-zA-Z_:][\w:]*/g) ?? []),
      ),
    );
    const queried = (metric: string) =>
      names.has(metric) || HISTOGRAM_SERIES.some((suffix) => names.has(`${metric}${suffix}`));
    expect(METRICS.filter((metric) => !queried(metric))).toEqual([]);
  });
});
