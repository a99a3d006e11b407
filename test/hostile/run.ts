import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startBenchEngines } from "../../bench/engines.ts";
import { median } from "../../bench/percentile.ts";
import { repoRoot } from "../../stack/paths.ts";
import type { StackEnv } from "../../stack/stack.ts";
import { waitForDrained } from "../chaos/drain.ts";
import type { Attack, AttackReport, Target } from "./attack.ts";
import { emptiedKeysFile } from "./attacks/emptied-keys-file.ts";
import { jsonArrayBomb } from "./attacks/json-array-bomb.ts";
import { keyInUrl } from "./attacks/key-in-url.ts";
import { missingKeysFileRestart } from "./attacks/missing-keys-file-restart.ts";
import { newlineBomb } from "./attacks/newline-bomb.ts";
import { queryFlood } from "./attacks/query-flood.ts";
import { slowBodies } from "./attacks/slow-bodies.ts";
import { type Counts, countStored, countsProblems } from "./exactness.ts";
import { count, formatTally, is2xx, refused, type Tally } from "./outcomes.ts";
import { waitForIngest, waitForSteadyLoad } from "./recovery.ts";
import { type AttackRow, type Bars, ISSUE_BARS, markdownReport, percent, rowFailures } from "./report.ts";
import { startSystem } from "./system.ts";
import {
  AUDIENCE,
  disruptedBy,
  idsOf,
  type LoadRecord,
  type LoadSettings,
  startValidLoad,
  summarize,
  type ValidLoad,
  type WindowStats,
} from "./valid-load.ts";

export interface HostileOptions {
  /** In order; the ones that leave the system changed (an API process replaced) go last. */
  attacks: Attack[];
  /** Each baseline and each attack phase. */
  phaseSeconds: number;
  /** The load alone before the first phase (JIT, connections, the topic's first writes). */
  warmupSeconds: number;
  /** How long an attack's requests still open when it stops may take to end (answered or cut by the server). */
  settleSeconds: number;
  dataDir: string;
  /** Engines to use (the test suite's); by default the run starts its own on free ports under dataDir. */
  engines?: StackEnv;
  /** More of the app's environment (a topic and database of its own on shared engines). */
  appEnv?: Record<string, string>;
  load: Pick<LoadSettings, "eventsPerSecond" | "batchesPerSecond" | "batchSize">;
  /** What passes; the issue's by default. */
  bars?: Bars;
  log?: (line: string) => void;
}

export interface HostileResult {
  rows: AttackRow[];
  counts: Counts;
  countProblems: string[];
  markdown: string;
  reportFile: string;
  pass: boolean;
}

interface Phases {
  attack: Attack;
  baseline: [number, number];
  underAttack: [number, number];
  report: AttackReport;
  loadAverage: number;
}

/**
 * Runs each attack against the whole system as `npm start` starts it, while a paced valid load of `/event` and
 * `/events` runs throughout: for each, a baseline phase of the load alone and then the same load under the
 * attack. Afterwards it waits for the workers to commit everything and compares every acknowledged id with
 * ClickHouse's rows. Writes the report (markdown) to `dataDir`/report.md.
 */
export async function runHostile(options: HostileOptions): Promise<HostileResult> {
  const log = options.log ?? ((line: string) => console.log(`[hostile] ${line}`));
  const loadAverageAtStart = loadavg();
  rmSync(options.dataDir, { recursive: true, force: true });
  const own = options.engines ? undefined : await startBenchEngines(join(options.dataDir, "engines"));
  const engines = options.engines ?? (own?.env as StackEnv);
  try {
    const system = await startSystem({ engines, stateDir: join(options.dataDir, "state"), env: options.appEnv });
    log(`npm start is up: API ${system.apiUrl}, ${system.apiInstances} API processes, keys required`);
    try {
      const target: Target = { ...system, attackerAddress: ATTACKER, log: (line) => log(`  ${line}`) };
      const settings: LoadSettings = {
        ...options.load,
        apiUrl: system.apiUrl,
        ingestKey: system.ingestKey,
        timeoutMs: 10_000,
        runId: `h${Date.now().toString(36)}`,
        sources: AUDIENCE,
      };
      const load = startValidLoad(settings);
      let records: LoadRecord[] = [];
      let finalBaseline: [number, number] = [0, 0];
      const phases: Phases[] = [];
      try {
        await sleep(options.warmupSeconds * 1000);
        const notReady = await Promise.all([waitForIngest(target, RECOVERY_MS), waitForSteadyLoad(load, RECOVERY_MS)]);
        if (notReady.some(Boolean)) throw new Error(`before the first attack: ${notReady.filter(Boolean).join("; ")}`);
        for (const attack of options.attacks) phases.push(await runPhases(attack, target, load, options, log));
        // The load alone once more: what the last attack left behind shows here (pm2's memory check, for one,
        // restarts a bloated process up to 30 s later).
        finalBaseline = [Date.now(), Date.now() + options.phaseSeconds * 1000];
        await sleep(options.phaseSeconds * 1000);
      } finally {
        records = await load.stop();
      }

      log("waiting for the workers to commit everything ...");
      await waitForDrained(system.config, 180_000);
      const { accepted, unsure } = sortIds(records, settings);
      const counts = await countStored(system.config, accepted, unsure);
      const countProblems = countsProblems(counts);
      const rows = phases.map((p) => toRow(p, records));
      const baselineWindows = [...phases.map((p) => p.baseline), finalBaseline];
      blameAftermaths(
        rows,
        baselineWindows.slice(1).map((window) => summarize(records, ...window)),
      );
      compareSpoiledWithClean(rows);
      const baselines = summarizeAll(records, baselineWindows);
      const markdown = markdownReport(
        {
          date: new Date().toISOString().slice(0, 16).replace("T", " "),
          commit: execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim(),
          cores: availableParallelism(),
          loadAverageAtStart,
          loadAverageAtEnd: loadavg(),
          phaseSeconds: options.phaseSeconds,
          loadDescription:
            `Valid load: ${settings.eventsPerSecond} POST /event and ${settings.batchesPerSecond} POST /events ` +
            `(${settings.batchSize} events, NDJSON) per second with an ingest key, from a thread of its own`,
          baselines,
        },
        rows,
        counts,
        countProblems,
        options.bars,
      );
      const reportFile = join(options.dataDir, "report.md");
      mkdirSync(options.dataDir, { recursive: true });
      writeFileSync(reportFile, markdown);
      // Every valid request, for a closer look at a phase (when, which route, how it ended, how long it took).
      writeFileSync(join(options.dataDir, "valid-load.ndjson"), records.map((r) => JSON.stringify(r)).join("\n"));
      const pass = countProblems.length === 0 && rows.every((row) => rowFailures(row, options.bars).length === 0);
      return { rows, counts, countProblems, markdown, reportFile, pass };
    } finally {
      await system.stop();
    }
  } finally {
    await own?.stop();
  }
}

async function runPhases(
  attack: Attack,
  target: Target,
  load: ValidLoad,
  options: HostileOptions,
  log: (line: string) => void,
): Promise<Phases> {
  const phaseMs = options.phaseSeconds * 1000;
  const baseline: [number, number] = [Date.now(), Date.now() + phaseMs];
  await sleep(phaseMs);
  const loadAverage = loadavg()[0] ?? 0;
  log(`attack: ${attack.name} (load average ${loadAverage.toFixed(2)})`);
  const stop = new AbortController();
  const underAttack: [number, number] = [Date.now(), Date.now() + phaseMs];
  const running = attack
    .run(target, stop.signal, options.settleSeconds * 1000)
    .catch((error: Error): AttackReport => ({ outcomes: {}, problems: [`the attack failed: ${error.message}`] }));
  await sleep(phaseMs);
  stop.abort();
  const report = await running;
  // Nothing may stop ingestion: once the attack is over it must work again, and the valid load be steady
  // again, before the next baseline.
  const recovery = await Promise.all([waitForIngest(target, RECOVERY_MS), waitForSteadyLoad(load, RECOVERY_MS)]);
  for (const problem of recovery) if (problem) report.problems.push(problem);
  return { attack, baseline, underAttack, report, loadAverage };
}

/** The attacker's one client address; the valid load comes from AUDIENCE's. */
const ATTACKER = "127.0.6.6";

/** How soon after an attack ingestion must work again on every API process. */
const RECOVERY_MS = 30_000;

function toRow(phases: Phases, records: LoadRecord[]): AttackRow {
  const expected = phases.attack.expected ?? refused;
  const unexpected: Tally = {};
  for (const [outcome, n] of Object.entries(phases.report.outcomes)) {
    if (!expected(outcome)) count(unexpected, outcome, n);
  }
  const disruptions = phases.report.disruptions ?? [];
  const excused = new Set(records.filter((record) => disruptions.some((d) => disruptedBy(record, d))));
  return {
    attack: phases.attack.name,
    summary: phases.attack.summary,
    baseline: summarize(records, ...phases.baseline),
    underAttack: summarize(
      records.filter((record) => !excused.has(record)),
      ...phases.underAttack,
    ),
    outcomes: phases.report.outcomes,
    unexpected,
    problems: phases.report.problems,
    leftOut:
      excused.size === 0
        ? undefined
        : `${excused.size} cut or timed out by ${disruptions.map((d) => d.what).join(", ")}`,
    loadAverage: phases.loadAverage,
  };
}

/**
 * An attack whose next baseline (the load alone, after the recovery checks) misses the 2xx bar left something
 * behind that surfaced late: that is the attack's failure, and the next attack's comparison with that baseline
 * would be too lenient to trust.
 */
function blameAftermaths(rows: AttackRow[], nextBaselines: WindowStats[]): void {
  rows.forEach((row, i) => {
    const next = nextBaselines[i];
    if (next && next.okShare < ISSUE_BARS.minOkShare) {
      row.problems.push(
        `afterwards, the load alone answered ${percent(next.okShare)} 2xx (${formatTally(next.failures)})`,
      );
    }
  });
}

/** A row whose baseline missed the 2xx bar is compared with the median p99 of the baselines that did not. */
function compareSpoiledWithClean(rows: AttackRow[]): void {
  const clean = rows.filter((row) => row.baseline.okShare >= ISSUE_BARS.minOkShare).map((row) => row.baseline.p99Ms);
  for (const row of rows) {
    if (row.baseline.okShare < ISSUE_BARS.minOkShare && clean.length > 0) row.referenceP99Ms = median(clean);
  }
}

function summarizeAll(records: LoadRecord[], windows: [number, number][]) {
  return summarize(
    records.filter((r) => windows.some(([from, to]) => r.at >= from && r.at < to)),
    0,
    Number.POSITIVE_INFINITY,
  );
}

/** Ids a 2xx acknowledged, and ids of requests that got none (Kafka may have them all the same). */
function sortIds(records: LoadRecord[], settings: LoadSettings): { accepted: Set<string>; unsure: Set<string> } {
  const accepted = new Set<string>();
  const unsure = new Set<string>();
  for (const record of records) {
    for (const id of idsOf(record, settings)) (is2xx(record.outcome) ? accepted : unsure).add(id);
  }
  return { accepted, unsure };
}

/** Every attack of issue 19, those that replace an API process last. */
export const ALL_ATTACKS: Attack[] = [
  slowBodies,
  newlineBomb,
  jsonArrayBomb,
  queryFlood,
  keyInUrl,
  emptiedKeysFile,
  missingKeysFileRestart,
];

/** HOSTILE_ATTACKS: a comma-separated list of words; only the attacks whose name contains one of them run. */
function chosenAttacks(filter: string | undefined): Attack[] {
  const words = (filter ?? "")
    .split(",")
    .map((word) => word.trim().toLowerCase())
    .filter((word) => word !== "");
  if (words.length === 0) return ALL_ATTACKS;
  const chosen = ALL_ATTACKS.filter((attack) => words.some((word) => attack.name.includes(word)));
  if (chosen.length === 0) {
    console.error(`HOSTILE_ATTACKS=${filter} names none of: ${ALL_ATTACKS.map((a) => a.name).join("; ")}`);
    process.exit(2);
  }
  return chosen;
}

if (import.meta.main) {
  const result = await runHostile({
    attacks: chosenAttacks(process.env.HOSTILE_ATTACKS),
    phaseSeconds: Number(process.env.HOSTILE_PHASE_SECONDS ?? 20),
    warmupSeconds: 10,
    settleSeconds: 30,
    dataDir: join(repoRoot, ".data/hostile"),
    load: { eventsPerSecond: 200, batchesPerSecond: 10, batchSize: 20 },
  });
  console.log(`\n${result.markdown}`);
  console.log(`report: ${result.reportFile}`);
  console.log(result.pass ? "PASS: every attack held to the bars" : "FAIL: see the result column above");
  process.exit(result.pass ? 0 : 1);
}
