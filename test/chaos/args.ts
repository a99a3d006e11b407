import { parseArgs } from "node:util";

/** A command line `npm run test:chaos` cannot run; the message says what is wrong. */
export class ChaosArgsError extends Error {
  override name = "ChaosArgsError";
}

export interface ChaosArgs {
  /** 1: the single-broker run (worker kills, engine restarts); 3: the broker chaos run on a 3-node cluster. */
  brokers: 1 | 3;
}

export const CHAOS_USAGE = "usage: npm run test:chaos [-- --brokers 1|3]";

export function parseChaosArgs(argv: string[]): ChaosArgs {
  let values: { brokers?: string | undefined };
  try {
    ({ values } = parseArgs({ args: argv, options: { brokers: { type: "string" } }, strict: true }));
  } catch (error) {
    throw new ChaosArgsError(`${(error as Error).message}\n${CHAOS_USAGE}`);
  }
  if (values.brokers === undefined || values.brokers === "1") return { brokers: 1 };
  if (values.brokers === "3") return { brokers: 3 };
  throw new ChaosArgsError(`--brokers must be 1 or 3, not ${JSON.stringify(values.brokers)}\n${CHAOS_USAGE}`);
}
