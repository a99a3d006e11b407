import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { FastifyRequest } from "fastify";
import { AppError, type ErrorCode } from "../errors.ts";
import { clientBucketId } from "../http/client-ip.ts";
import type { BodyAccount } from "./admission.ts";
import { type BodyCaps, ConcurrentBodies } from "./concurrent-bodies.ts";
import type { BatchScan } from "./scan.ts";

export interface IntakeLimits extends BodyCaps {
  /** Bytes per second a body must keep arriving at, measured over each stretch of `graceMs`. */
  minBytesPerSecond: number;
  /** How long a body may arrive at any pace before its rate is first measured; then the stretch it is measured over. */
  graceMs: number;
}

/** What a route reads: its size limit, how its body is parsed, and for batches the scan and admission account. */
export interface BodySpec {
  maxBytes: number;
  /** The body's value for the route (may throw an AppError). */
  parse: (body: Buffer) => unknown;
  scan?: BatchScan | undefined;
  account?: BodyAccount | undefined;
}

/** What reading a body can answer, besides the route's own errors (for the routes' documentation). */
export const INTAKE_ERRORS = [
  "payload_too_large",
  "request_timeout",
  "too_many_bodies",
  "sender_gone",
  "shutting_down",
] as const satisfies readonly ErrorCode[];

/** Fastify's content-type parser callback: called once, with the parsed body or the error to answer. */
export type BodyDone = (error: Error | null, body?: unknown) => void;

const EMPTY = Buffer.alloc(0);
/** A body cut while its sender still sends: how long its error answer may take to leave before the socket is closed. */
const CUT_LINGER_MS = 1000;
/** Chunks a body keeps before they are joined into one (Node reads at most 64 KiB at a time: 4 MiB in 64). */
const MAX_CHUNKS = 64;
/** How often bodies in progress are measured, at most (a slow one is cut up to this late). */
const SWEEP_MS = 250;

/** Hands `body`, parsed, to `done`, or the error the parse threw. */
function parseInto(spec: BodySpec, body: Buffer, done: BodyDone): void {
  let value: unknown;
  try {
    value = spec.parse(body);
  } catch (error) {
    done(error as Error);
    return;
  }
  done(null, value);
}

const tooLarge = (limit: number) =>
  new AppError(
    "payload_too_large",
    `the body is larger than this route's limit of ${limit} bytes; send fewer or smaller events`,
  );

/**
 * Reads request bodies under their budgets: the route's size limit, a minimum rate (after a grace, a body that
 * arrives slower than `minBytesPerSecond` is cut with 408), the caps on bodies one client or key sends at once
 * (429), and for batches the scan (413 at the chunk that breaks a limit) and the admission's byte budget (the
 * socket is paused while there is no room). A body costs a few map and set operations and no timer of its own:
 * one sweep measures every body arriving. One that comes with its headers, as nearly every `/event` does, is
 * counted for the microseconds it takes to read.
 */
export class BodyIntake {
  readonly #limits: IntakeLimits;
  readonly #bodies: ConcurrentBodies;
  readonly #arriving = new Set<Receipt>();
  readonly #sweeper: NodeJS.Timeout;
  #stopping = false;

  constructor(limits: IntakeLimits) {
    this.#limits = limits;
    this.#bodies = new ConcurrentBodies(limits);
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(SWEEP_MS, limits.graceMs / 2)).unref();
  }

  /** Reads the body of `request` (its `payload`) by `spec`; calls `done` once. */
  read(request: FastifyRequest, payload: IncomingMessage, spec: BodySpec, done: BodyDone): void {
    const declared = request.headers["content-length"];
    if (declared !== undefined && Number(declared) > spec.maxBytes) {
      done(tooLarge(spec.maxBytes));
      return;
    }
    new Receipt(this, request, payload, spec, done).start();
  }

  /** Stopping: every body still arriving is cut with 503 shutting_down, and so is any that starts to. */
  stop(): void {
    this.#stopping = true;
    for (const receipt of this.#arriving) {
      receipt.cut(new AppError("shutting_down", "the server is shutting down; send the body again"));
    }
  }

  /** Ends the sweeper (the app is closed). */
  close(): void {
    clearInterval(this.#sweeper);
  }

  /** @internal A body starts arriving: counted for its client and key, watched for its rate; throws 429 or 503. */
  arrive(receipt: Receipt, client: string, key: string | undefined): void {
    if (this.#stopping) throw new AppError("shutting_down", "the server is shutting down; send the body again");
    this.#bodies.enter(client, key);
    this.#arriving.add(receipt);
  }

  /** @internal The body counted by arrive() is in, or cut. */
  leave(receipt: Receipt, client: string, key: string | undefined): void {
    if (this.#arriving.delete(receipt)) this.#bodies.leave(client, key);
  }

  #sweep(): void {
    if (this.#arriving.size === 0) return;
    const now = Date.now();
    const { graceMs, minBytesPerSecond } = this.#limits;
    for (const receipt of this.#arriving) receipt.measure(now, graceMs, minBytesPerSecond);
  }
}

/** One body being read, or whole but waiting for room or a turn. */
class Receipt {
  readonly #intake: BodyIntake;
  readonly #request: FastifyRequest;
  readonly #payload: IncomingMessage;
  readonly #spec: BodySpec;
  readonly #done: BodyDone;
  #chunks: Buffer[] = [];
  #bytes = 0;
  /** The start of the stretch the rate is measured over, and the bytes received before it. */
  #markAt = 0;
  #markBytes = 0;
  /** Waiting for room in the admission (the payload is paused); #ended: it ended meanwhile. */
  #paused = false;
  #ended = false;
  #settled = false;
  #client: string | undefined;
  #key: string | undefined;
  #listening = false;

  constructor(intake: BodyIntake, request: FastifyRequest, payload: IncomingMessage, spec: BodySpec, done: BodyDone) {
    this.#intake = intake;
    this.#request = request;
    this.#payload = payload;
    this.#spec = spec;
    this.#done = done;
  }

  start(): void {
    this.#spec.account?.listen(this);
    const client = clientBucketId(this.#request.ip);
    const key = this.#request.apiKey?.name;
    try {
      this.#intake.arrive(this, client, key);
    } catch (error) {
      // Over a cap, or stopping: the rest of this body is not wanted.
      this.cut(error as AppError);
      return;
    }
    this.#client = client;
    this.#key = key;
    this.#markAt = Date.now();
    this.#listening = true;
    this.#payload.on("data", this.#onData);
    this.#payload.on("end", this.#onEnd);
    // A sender gone mid-body (a reset, a closed socket, Node's request timeout) errors the stream ("aborted").
    this.#payload.on("error", this.#onGone);
  }

  /** The sweeper's look: a body that is not paused and received less than the minimum rate over `graceMs` is cut. */
  measure(now: number, graceMs: number, minBytesPerSecond: number): void {
    if (this.#paused) return;
    const elapsed = now - this.#markAt;
    if (elapsed < graceMs) return;
    const received = this.#bytes - this.#markBytes;
    if (received * 1000 < minBytesPerSecond * elapsed) {
      this.cut(
        new AppError(
          "request_timeout",
          `the body arrived slower than ${minBytesPerSecond} bytes/s (${received} bytes in ${elapsed} ms); send it faster, or a smaller one`,
        ),
      );
      return;
    }
    this.#markAt = now;
    this.#markBytes = this.#bytes;
  }

  /** Answers `error` at once (if the socket can still take it) and closes the connection, whatever the sender does. */
  cut(error: AppError): void {
    const socket = this.#request.raw.socket as Socket | null;
    this.#fail(error);
    if (!socket?.destroy) return; // an injected request (tests) has no real socket
    if (!socket.writable) socket.destroy();
    else setTimeout(() => socket.destroy(), CUT_LINGER_MS).unref();
  }

  /** The admission has room again (AccountEvents). */
  resume(): void {
    if (this.#settled) return;
    this.#paused = false;
    if (this.#ended) {
      this.#end();
      return;
    }
    this.#markAt = Date.now();
    this.#markBytes = this.#bytes;
    this.#payload.resume();
  }

  /** The admission's wait is over (AccountEvents). */
  expire(error: AppError): void {
    this.#fail(error);
  }

  #onData = (chunk: Buffer): void => {
    this.#take(chunk);
  };

  #onEnd = (): void => {
    this.#end();
  };

  #onGone = (): void => {
    this.#fail(new AppError("sender_gone", "the sender closed the connection before its body was complete"));
  };

  #take(chunk: Buffer): void {
    if (this.#settled) return;
    this.#bytes += chunk.length;
    if (this.#bytes > this.#spec.maxBytes) {
      this.#fail(tooLarge(this.#spec.maxBytes));
      return;
    }
    try {
      this.#spec.scan?.push(chunk);
    } catch (error) {
      this.#fail(error as AppError);
      return;
    }
    this.#chunks.push(chunk);
    // Each chunk is a Buffer of its own: a body sent in tiny TCP segments would cost far more than its bytes.
    if (this.#chunks.length === MAX_CHUNKS) this.#chunks = [Buffer.concat(this.#chunks, this.#bytes)];
    if (this.#spec.account && !this.#spec.account.charge(chunk.length)) {
      this.#paused = true;
      this.#payload.pause();
    }
  }

  #end(): void {
    if (this.#settled) return;
    if (this.#paused) {
      this.#ended = true;
      return;
    }
    const declared = Number(this.#request.headers["content-length"]);
    if (!Number.isNaN(declared) && declared !== this.#bytes) {
      this.#fail(new AppError("invalid_content_length", "Request body size did not match Content-Length"));
      return;
    }
    const chunks = this.#chunks;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : chunks.length === 0 ? EMPTY : Buffer.concat(chunks);
    this.#settle();
    const account = this.#spec.account;
    if (!account) {
      parseInto(this.#spec, body, this.#done);
      return;
    }
    account.received();
    account.turn().then(
      () => parseInto(this.#spec, body, this.#done),
      (error: Error) => this.#done(error),
    );
  }

  #fail(error: AppError): void {
    if (this.#settled) return;
    this.#settle();
    this.#spec.account?.close();
    this.#done(error);
  }

  /** The body is in or refused: stop listening and counting it. */
  #settle(): void {
    this.#settled = true;
    this.#chunks = [];
    if (this.#listening) {
      this.#listening = false;
      this.#payload.off("data", this.#onData);
      this.#payload.off("end", this.#onEnd);
      this.#payload.off("error", this.#onGone);
      this.#intake.leave(this, this.#client as string, this.#key);
    }
  }
}
