import { type LoadOptions, parseLoadArgs, USAGE, UsageError } from "./args.ts";
import { createGenerator } from "./generator.ts";
import { runLoad } from "./run.ts";
import { formatSummary, liveLine, type Summary, shortfallLines } from "./stats.ts";

/**
 * Composition root of `npm run load`: parses the flags, sends impressions to the API, shows a live line on a
 * terminal (stderr) and prints the summary (stdout; one JSON object with --json). Exit codes: 0 done, 1 more
 * than 1% of the requests failed, 2 bad flags. SIGINT stops early with the summary; a second one exits at once.
 */
export async function load(options: LoadOptions, { banner = true } = {}): Promise<Summary> {
  const stop = new AbortController();
  const onSigint = () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
  };
  process.on("SIGINT", onSigint);
  const live = process.stderr.isTTY === true;
  if (banner) {
    const until = Number.isFinite(options.durationMs)
      ? `for ${options.durationMs / 1000} s`
      : options.events !== undefined
        ? `until ${options.events} events`
        : "until Ctrl-C";
    process.stderr.write(
      `[load] ${options.route} -> ${options.url}, concurrency ${options.concurrency}, ` +
        `rate ${options.rate === undefined ? "unlimited" : `${options.rate}/s`}, ${until}\n`,
    );
  }
  const next = createGenerator({ ...options, rng: Math.random, now: Date.now });
  try {
    return await runLoad(options, {
      next,
      signal: stop.signal,
      onTick: live ? (stats, ms, last) => process.stderr.write(`\r\x1b[K${liveLine(stats, ms, last)}`) : undefined,
    });
  } finally {
    process.off("SIGINT", onSigint);
    if (live) process.stderr.write("\r\x1b[K");
  }
}

/** Prints the summary as `--json` says; returns the exit code. */
export function report(summary: Summary, json: boolean): number {
  process.stdout.write(json ? `${JSON.stringify(summary)}\n` : `${formatSummary(summary)}\n`);
  // With --json, stdout holds the JSON alone: a person still reads on stderr that the rate was not reached.
  if (json && summary.rateShortfall)
    process.stderr.write(`[load] ${shortfallLines(summary.rateShortfall).join("; ")}\n`);
  return summary.ok ? 0 : 1;
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseLoadArgs>;
  try {
    parsed = parseLoadArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`npm run load: ${error.message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const summary = await load(parsed.options);
  process.exitCode = report(summary, parsed.options.json);
}

if (import.meta.main) await main();
