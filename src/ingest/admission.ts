import { AppError } from "../errors.ts";

export interface AdmissionLimits {
  /** Body bytes received and held at once, by all batch requests together. */
  maxBytes: number;
  /** Batches parsed, validated and awaiting their ack at once. */
  maxBatches: number;
  /** The longest a request waits, in all (for room for its bytes, then for its turn), before a 503. */
  maxWaitMs: number;
}

/** How an account hears from the admission while it waits. */
export interface AccountEvents {
  /** There is room again: read on. */
  resume(): void;
  /** It waited its whole allowance: answer this error (503 overloaded). */
  expire(error: AppError): void;
}

/** How much a socket read gives at most (Node reads 64 KiB at a time). */
const READ_CHUNK_BYTES = 64 * 1024;

const overloaded = () => new AppError("overloaded", "too many batches in progress; retry shortly");
const gone = () => new AppError("sender_gone", "the request ended while it waited for room or a turn");

/**
 * Bounds the memory of batch requests by the bytes they have actually received, not the ones they declare: a
 * body is read as it arrives, each chunk charged to `maxBytes` shared by all; over it, the body waits (its
 * socket is paused, so the rest stays in the sender's and the kernel's buffers) in arrival order until answered
 * requests give bytes back, and gets a 503 after `maxWaitMs` of waiting. A sender that has sent one byte holds
 * one byte, so slow or stalled senders never keep the others out. Once received, a body waits for one of
 * `maxBatches` turns to be parsed and written. If the bodies waiting for room hold it all and none is being
 * processed (nothing would ever give bytes back), the first in line reads on past the bound, alone: the bound is
 * `maxBytes` plus one body (docs/DESIGN.md, "Budgets").
 */
export class Admission {
  readonly #limits: AdmissionLimits;
  #bytes = 0;
  /** Accounts waiting for room, in the order they started waiting. */
  readonly #waitingForRoom: BodyAccount[] = [];
  /** The one account reading past the bound, if any. */
  #overdraft: BodyAccount | undefined;
  /** Accounts whose body is complete and that are not answered yet: they will give bytes back. */
  #processing = 0;
  #turns = 0;
  readonly #waitingForTurn: BodyAccount[] = [];

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /** Bytes held by all accounts (for tests and metrics). */
  get bytes(): number {
    return this.#bytes;
  }

  /** A new body's account; close it however the request ends. */
  open(): BodyAccount {
    return new BodyAccount(this);
  }

  /** @internal The account's chunk: whether it may read on now. */
  charge(account: BodyAccount, bytes: number): boolean {
    this.#bytes += bytes;
    if (this.#bytes <= this.#limits.maxBytes || account === this.#overdraft) {
      if (this.#waitingForRoom.length > 0) this.#admit();
      return true;
    }
    this.#waitingForRoom.push(account);
    if (this.#processing === 0 && this.#overdraft === undefined) {
      // Nothing would ever give bytes back: the first in line reads on past the bound, alone.
      const first = this.#waitingForRoom.shift() as BodyAccount;
      this.#overdraft = first;
      if (first === account) return true;
      first.wake();
    }
    account.wait(this.#timeout(account, this.#waitingForRoom));
    return false;
  }

  /** @internal The account's body is complete. */
  received(account: BodyAccount): void {
    this.#processing++;
    if (account === this.#overdraft) this.#overdraft = undefined;
  }

  /** @internal A turn now, if one is free and nobody waits for one. */
  tryTurn(): boolean {
    if (this.#waitingForTurn.length > 0 || this.#turns >= this.#limits.maxBatches) return false;
    this.#turns++;
    return true;
  }

  /** @internal Queues for the next free turn (takeTurn(), or expire() past the wait allowance). */
  queueForTurn(account: BodyAccount): void {
    this.#waitingForTurn.push(account);
    account.wait(this.#timeout(account, this.#waitingForTurn));
  }

  /** @internal Gives back what the account held. */
  close(account: BodyAccount, held: { bytes: number; complete: boolean; turn: boolean }): void {
    this.#bytes -= held.bytes;
    if (held.complete) this.#processing--;
    if (held.turn) this.#turns--;
    if (account === this.#overdraft) this.#overdraft = undefined;
    remove(this.#waitingForRoom, account);
    remove(this.#waitingForTurn, account);
    this.#admit();
  }

  #timeout(account: BodyAccount, queue: BodyAccount[]): NodeJS.Timeout {
    return setTimeout(() => {
      remove(queue, account);
      account.expire(overloaded());
    }, this.#limits.maxWaitMs - account.waitedMs);
  }

  /** Lets in, in order, the bodies waiting for room while it lasts, then the bodies waiting for a turn. */
  #admit(): void {
    const room = this.#waitingForRoom;
    // Each body let in is counted as one more chunk (as Node reads them) until its charges say how much it took.
    for (let left = this.#limits.maxBytes - this.#bytes; room.length > 0 && left > 0; left -= READ_CHUNK_BYTES) {
      (room.shift() as BodyAccount).wake();
    }
    if (room.length > 0 && this.#processing === 0 && this.#overdraft === undefined) {
      this.#overdraft = room.shift() as BodyAccount;
      this.#overdraft.wake();
    }
    while (this.#waitingForTurn.length > 0 && this.#turns < this.#limits.maxBatches) {
      this.#turns++;
      (this.#waitingForTurn.shift() as BodyAccount).takeTurn();
    }
  }
}

function remove(queue: BodyAccount[], account: BodyAccount): void {
  const at = queue.indexOf(account);
  if (at !== -1) queue.splice(at, 1);
}

/** One batch request's bytes, waits and turn in the admission. */
export class BodyAccount {
  readonly #admission: Admission;
  #events: AccountEvents | undefined;
  #bytes = 0;
  #complete = false;
  #turn = false;
  #closed = false;
  #waitingSince = 0;
  #timer: NodeJS.Timeout | undefined;
  #waitedMs = 0;
  #turnGranted: (() => void) | undefined;
  #turnRefused: ((error: AppError) => void) | undefined;

  constructor(admission: Admission) {
    this.#admission = admission;
  }

  /** Who reads the body: told when to read on, or that the wait is over. */
  listen(events: AccountEvents): void {
    this.#events = events;
  }

  /** Milliseconds this request has waited so far, in all. */
  get waitedMs(): number {
    return this.#waitedMs + (this.#timer ? Date.now() - this.#waitingSince : 0);
  }

  /**
   * Charges a chunk already received; false when the body must pause until the events' resume() (or
   * expire(), after the wait allowance).
   */
  charge(bytes: number): boolean {
    this.#bytes += bytes;
    return this.#admission.charge(this, bytes);
  }

  /** The whole body is in: it no longer takes room beyond its own bytes, and the account now gives bytes back when closed. */
  received(): void {
    this.#complete = true;
    this.#admission.received(this);
  }

  /** A turn to parse and write the body: resolves at once or after a wait, rejects with a 503 past the allowance. */
  turn(): Promise<void> {
    if (this.#admission.tryTurn()) {
      this.#turn = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.#turnGranted = resolve;
      this.#turnRefused = reject;
      this.#admission.queueForTurn(this);
    });
  }

  /** Gives back everything the account holds or waits for. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const waitingForRoom = this.#timer !== undefined && this.#turnRefused === undefined;
    this.#stopWaiting();
    this.#admission.close(this, { bytes: this.#bytes, complete: this.#complete, turn: this.#turn });
    // Closed from outside (the sender hung up) while waiting: whoever waits must hear it.
    const refused = this.#turnRefused;
    this.#turnGranted = undefined;
    this.#turnRefused = undefined;
    if (waitingForRoom) this.#events?.expire(gone());
    refused?.(gone());
  }

  /** @internal */
  wait(timer: NodeJS.Timeout): void {
    this.#waitingSince = Date.now();
    this.#timer = timer;
  }

  /** @internal */
  wake(): void {
    this.#stopWaiting();
    this.#events?.resume();
  }

  /** @internal */
  takeTurn(): void {
    this.#stopWaiting();
    this.#turn = true;
    const granted = this.#turnGranted;
    this.#turnGranted = undefined;
    this.#turnRefused = undefined;
    granted?.();
  }

  /** @internal */
  expire(error: AppError): void {
    this.#stopWaiting();
    const refused = this.#turnRefused;
    this.#turnGranted = undefined;
    this.#turnRefused = undefined;
    if (refused) refused(error);
    else this.#events?.expire(error);
  }

  #stopWaiting(): void {
    if (!this.#timer) return;
    clearTimeout(this.#timer);
    this.#waitedMs += Date.now() - this.#waitingSince;
    this.#timer = undefined;
  }
}
