import { once } from "node:events";
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { CUT, count, describeAnswer, type Outcome, type Tally } from "./outcomes.ts";

/** What an attack may use: the system's addresses, keys a publisher or a dashboard holds, its keys file and processes. */
export interface Target {
  /** The ingest API (`PORT`). */
  apiUrl: string;
  /** Where `/stats*` and `/metrics` are served. */
  queryUrl: string;
  /** The attacker's client address (the valid load comes from others): its requests are sent from it. */
  attackerAddress: string;
  /** The publisher's ingest key: public, it sits in page source, so the attacker has it too. */
  ingestKey: string;
  /** The operator's dashboard's query key. */
  queryKey: string;
  /** A tenant's query key (`--ads ad-*`): what a tenant's dashboard, or whoever took it, holds. */
  tenantQueryKey: string;
  keysFile: string;
  /** The ingest API processes pm2 runs now. */
  apiPids(): number[];
  /** The query API processes pm2 runs now. */
  queryPids(): number[];
  /** Ingest API processes `npm start` runs. */
  apiInstances: number;
  /** Query API processes `npm start` runs. */
  queryInstances: number;
  log(line: string): void;
}

/** How the attack's own requests ended, and anything else it saw go wrong. */
export interface AttackReport {
  outcomes: Tally;
  problems: string[];
  /**
   * Moments the attack itself broke connections (a process SIGKILLed, from then until it was gone): valid
   * requests in flight then, cut or timed out, are its direct cost, not the defences', and are left out.
   */
  disruptions?: Disruption[];
}

export interface Disruption {
  /** Epoch ms. */
  from: number;
  to: number;
  what: string;
}

export interface Attack {
  name: string;
  /** What it does, in a line of the report. */
  summary: string;
  /** Whether an outcome of the attack's requests is the defence working; by default refused() (outcomes.ts). */
  expected?(outcome: Outcome): boolean;
  /**
   * Attacks until `stop` aborts, then waits up to `settleMs` for its requests still open to end (the server
   * answers or cuts them), undoes what it changed, and reports.
   */
  run(target: Target, stop: AbortSignal, settleMs: number): Promise<AttackReport>;
}

export interface RawRequest {
  method: "GET" | "POST";
  /** Path and query, sent as they are (no normalisation: the attacks choose their bytes). */
  path: string;
  headers?: Record<string, string | number>;
  /** Written at once; with `holdOpen` the request is never ended (a body that stops mid-way). */
  body?: Buffer | string;
  holdOpen?: boolean;
}

/** An attack's requests: each on a connection of its own, each outcome counted, the open ones waited for. */
export class AttackRequests {
  readonly outcomes: Tally = {};
  private readonly open = new Set<(outcome: Outcome) => void>();
  private readonly baseUrl: string;
  private readonly localAddress: string | undefined;

  /** Requests to `baseUrl`, from `localAddress` when given. */
  constructor(baseUrl: string, localAddress?: string) {
    this.baseUrl = baseUrl;
    this.localAddress = localAddress;
  }

  /** Sends `raw` and resolves with how it ended: answered (status and error code), or cut. */
  send(raw: RawRequest): Promise<Outcome> {
    const url = new URL(this.baseUrl);
    return new Promise((resolve) => {
      let settled = false;
      const done = (outcome: Outcome) => {
        if (settled) return;
        settled = true;
        this.open.delete(abort);
        count(this.outcomes, outcome);
        resolve(outcome);
        req.destroy();
      };
      const abort = (outcome: Outcome) => done(outcome);
      this.open.add(abort);
      const req = request({
        host: url.hostname,
        port: url.port,
        method: raw.method,
        path: raw.path,
        agent: false,
        localAddress: this.localAddress,
        headers: raw.headers,
      });
      req.on("response", (res) => {
        // Enough of the body to read a JSON error; a large 2xx body is read and dropped.
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (text.length < 65_536) text += chunk;
        });
        res.on("end", () => done(describeAnswer(res.statusCode ?? 0, text)));
        res.on("error", () => done(CUT));
        res.on("close", () => done(CUT));
      });
      // After an answer the server may close while the rest of the body is being written: the answer stands.
      req.on("error", () => done(CUT));
      if (raw.holdOpen) {
        req.flushHeaders();
        if (raw.body !== undefined) req.write(raw.body);
      } else {
        req.end(raw.body);
      }
    });
  }

  /** Waits up to `limitMs` for the open requests to end; counts those still open then as such and closes them. */
  async settle(limitMs: number): Promise<void> {
    const deadline = Date.now() + limitMs;
    while (this.open.size > 0 && Date.now() < deadline) await sleep(100);
    for (const abort of [...this.open]) abort(`no end ${Math.round(limitMs / 1000)} s after the attack stopped`);
  }
}

/**
 * Runs `work` again and again until `stop` aborts, starting it at most once per `minIntervalMs`; returns at
 * once on the abort, leaving what `work` started running (its requests are settled by AttackRequests).
 */
export async function repeat(stop: AbortSignal, work: () => Promise<unknown>, minIntervalMs: number): Promise<void> {
  const stopped = stop.aborted ? Promise.resolve() : once(stop, "abort").then(() => undefined);
  while (!stop.aborted) {
    const began = Date.now();
    await Promise.race([work(), stopped]);
    const wait = minIntervalMs - (Date.now() - began);
    if (wait > 0 && !stop.aborted) await Promise.race([sleep(wait), stopped]);
  }
}
