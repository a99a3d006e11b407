import type { Counts } from "./exactness.ts";
import { formatTally, type Tally } from "./outcomes.ts";
import type { WindowStats } from "./valid-load.ts";

/** The issue's bars for the valid traffic under an attack. */
export interface Bars {
  /** Share of valid requests answered 2xx, 0-1. */
  minOkShare: number;
  /** Valid p99 under attack at most this many times the baseline's. */
  maxP99Ratio: number;
  /**
   * Or at most this much above the baseline's, whichever is larger: for short runs on a machine shared with other
   * work, where a 2× bar over a p99 of tens of milliseconds measures the scheduler, not the attack. 0 by default.
   */
  p99SlackMs?: number;
}

export const ISSUE_BARS: Bars = { minOkShare: 0.99, maxP99Ratio: 2 };

/** One attack: the valid load's baseline phase, then the same load under the attack. */
export interface AttackRow {
  attack: string;
  summary: string;
  baseline: WindowStats;
  underAttack: WindowStats;
  /** How the attack's own requests ended. */
  outcomes: Tally;
  /** Those that are not the defence working (a 2xx, a 5xx, no JSON error, no end). */
  unexpected: Tally;
  problems: string[];
  /**
   * The p99 to compare with when the baseline itself missed the 2xx bar (spoiled by the attack before): the
   * median p99 of the run's baselines that did not.
   */
  referenceP99Ms?: number | undefined;
  /** Valid requests left out of `underAttack`, and why (the attack's own disruption, see AttackReport). */
  leftOut?: string | undefined;
  /** The machine's 1-minute load average as the attack began (other work on it skews the latencies). */
  loadAverage: number;
}

/** Why a row misses the bars; empty when it passes. */
export function rowFailures(row: AttackRow, bars: Bars = ISSUE_BARS): string[] {
  const failures: string[] = [];
  const { baseline, underAttack } = row;
  if (underAttack.requests === 0) failures.push("no valid request was sent during the attack");
  else if (underAttack.okShare < bars.minOkShare) {
    failures.push(`valid 2xx ${percent(underAttack.okShare)} < ${percent(bars.minOkShare)}`);
  }
  const reference = row.referenceP99Ms ?? baseline.p99Ms;
  const slack = bars.p99SlackMs ?? 0;
  if (!(underAttack.p99Ms <= Math.max(bars.maxP99Ratio * reference, reference + slack))) {
    const which = row.referenceP99Ms === undefined ? "baseline" : "clean baselines' median";
    const orSlack = slack > 0 ? ` and > ${which} + ${duration(slack)}` : "";
    failures.push(
      `valid p99 ${duration(underAttack.p99Ms)} > ${bars.maxP99Ratio} × ${which} ${duration(reference)}${orSlack}`,
    );
  }
  if (Object.keys(row.outcomes).length === 0) failures.push("the attack sent no request");
  if (Object.keys(row.unexpected).length > 0)
    failures.push(`attack requests not refused: ${formatTally(row.unexpected)}`);
  failures.push(...row.problems);
  return failures;
}

export function percent(share: number): string {
  if (share === 1) return "100%";
  // Never "100.0%" for a share that missed some: as many decimals as it takes to show it is under.
  const oneDecimal = (share * 100).toFixed(1);
  return `${oneDecimal === "100.0" ? (share * 100).toFixed(2) : oneDecimal}%`;
}

export function duration(ms: number): string {
  if (Number.isNaN(ms)) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** What the report says about the run itself. */
export interface RunFacts {
  date: string;
  commit: string;
  cores: number;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
  phaseSeconds: number;
  loadDescription: string;
  /** All baseline phases together. */
  baselines: WindowStats;
}

const cell = (text: string) => text.replaceAll("|", "\\|");

/** The run as markdown: the table of attacks (as the issue's), the counts afterwards, what each attack does. */
export function markdownReport(
  facts: RunFacts,
  rows: AttackRow[],
  counts: Counts,
  countProblems: string[],
  bars: Bars = ISSUE_BARS,
): string {
  const averages = (values: number[]) => values.map((v) => v.toFixed(2)).join(", ");
  const lines = [
    `### npm run test:hostile, ${facts.date}`,
    "",
    `Commit ${facts.commit}, ${facts.cores} cores; load average ${averages(facts.loadAverageAtStart)} at the start, ` +
      `${averages(facts.loadAverageAtEnd)} at the end. ${facts.loadDescription}; each attack: ${facts.phaseSeconds} s ` +
      "of the load alone (baseline), then the same under the attack; the load alone once more after the last.",
    "",
    "| attack | valid answered 2xx | valid p99 | baseline: 2xx, p99 | valid requests not 2xx | attack's requests | load avg | result |",
    "|---|---|---|---|---|---|---|---|",
    `| none (every baseline) | ${percent(facts.baselines.okShare)} | ${duration(facts.baselines.p99Ms)} | | ${cell(formatTally(facts.baselines.failures))} | | | |`,
  ];
  for (const row of rows) {
    const failures = rowFailures(row, bars);
    lines.push(
      `| ${row.attack} | ${percent(row.underAttack.okShare)} | ${duration(row.underAttack.p99Ms)} | ` +
        `${percent(row.baseline.okShare)}, ${duration(row.baseline.p99Ms)}` +
        `${row.referenceP99Ms === undefined ? "" : ` (spoiled: compared with ${duration(row.referenceP99Ms)}, the clean baselines' median)`} | ` +
        `${cell(formatTally(row.underAttack.failures) + (row.leftOut ? `; left out: ${row.leftOut}` : ""))} | ` +
        `${cell(formatTally(row.outcomes))} | ${row.loadAverage.toFixed(2)} | ` +
        `${failures.length === 0 ? "pass" : cell(`**FAIL**: ${failures.join("; ")}`)} |`,
    );
  }
  lines.push(
    "",
    `Afterwards: ${counts.accepted} acknowledged ids; ClickHouse holds ${counts.storedRows} rows ` +
      `(${counts.storedDistinct} distinct ids, ${counts.unsureStored} of them from requests that got no 2xx), ` +
      `the rollup ${counts.rollupTotal}: **lost ${counts.lost}, double-counted ${counts.doubleCounted}**` +
      (countProblems.length === 0 ? "." : `; **FAIL**: ${countProblems.join("; ")}.`),
    "",
    "Attacks:",
    "",
    ...rows.map((row) => `- ${row.attack}: ${row.summary}.`),
  );
  return `${lines.join("\n")}\n`;
}
