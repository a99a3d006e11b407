import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { type LeaseClock, systemLeaseClock } from "./lease-clock.ts";
import {
  currentPidSpace,
  holderPrefix,
  isProvablyDead,
  type LeaseState,
  parseHolder,
  processIsAlive,
} from "./lease-holder.ts";
import { uniqueOwner } from "./owner.ts";
import type { ValkeyClient } from "./valkey.ts";

/** Another process holds this worker's owner name now: nothing this one claims may be inserted. */
export class OwnerLeaseLostError extends Error {
  override name = "OwnerLeaseLostError";
  readonly code = "OWNER_LEASE_LOST";
}

export interface OwnerLeaseOptions {
  /** Key prefix of the leases, next to the claims they name (`worker:<topic>:`). */
  keyPrefix: string;
  /** The process slot's name: the claims' owner if it is free or its holder is provably dead. */
  identity: string;
  /**
   * At least the claims' takeover time: a name is free again only after its holder's claims may be taken over,
   * so a holder that stalled has given up its inserts (insert-before-takeover) before anyone else has its name.
   */
  ttlMs: number;
  /** The longest insert: how long a dead holder's last insert may still be landing. */
  insertTimeoutMs: number;
  /** Called once if another process took the name (this one stalled past the TTL): this process must go. */
  onLost: () => void;
  logger: Logger;
  /** What the waits and renewals are timed by; the process's own clock unless a test injects one. */
  clock?: LeaseClock;
}

type LeaseValkey = ValkeyClient & {
  takeOwnerLease(
    key: string,
    expected: string,
    prefix: string,
    insertTimeoutMs: number,
    ttlMs: number,
  ): Promise<[number, LeaseState] | null>;
  renewOwnerLease(key: string, prefix: string, state: LeaseState, ttlMs: number): Promise<number>;
  releaseOwnerLease(key: string, prefix: string): Promise<number>;
};

/**
 * Takes the lease only if it holds `expected` ('' = nothing): a free name, or a dead holder's. Answers how long
 * (ms) the claims must wait for that holder's insert, and the state it wrote: a `claimed` holder's insert may land
 * for the insert timeout; one that was still waiting for its own predecessor's passes the rest of that wait on.
 */
const TAKE = `
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return nil end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local previous = string.match(current, '|([^|]*)$') or 'idle'
local lands = now
if previous == 'claimed' then
  lands = now + tonumber(ARGV[3])
else
  local inherited = tonumber(string.match(previous, '^until%-(%d+)$') or '0')
  if inherited > now then lands = inherited end
end
local state = 'idle'
if lands > now then state = 'until-' .. string.format('%.0f', lands) end
redis.call('SET', KEYS[1], ARGV[2] .. state, 'PX', ARGV[4])
return {lands - now, state}
`;
/**
 * Renews this holder's lease with its state; 0 if another holder has it. A lease that expired (Valkey away, or
 * this process stalled) is set again: nobody holds the name, so nobody can have used it meanwhile.
 */
const RENEW = `
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, #ARGV[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2], 'PX', ARGV[3])
return 1
`;
const RELEASE = `
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, #ARGV[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

const RENEWALS_PER_TTL = 5;
const ACQUIRE_ROUNDS = 3;
const ACQUIRE_PATIENCE_MS = 5_000;

/**
 * The name a worker stamps its claims with, leased in Valkey so that at most one live process uses it. A process
 * takes its slot's name (`identity`) when it is free or its holder is provably dead (pm2 restarted the slot after
 * a crash): then it recognises its predecessor's claims as its own (`replay`) at once instead of waiting for the
 * takeover time. Otherwise it takes a name of its own, as every worker did before. The lease's state says whether
 * an insert of its holder may be on its way to ClickHouse (`claimed`), so a successor waits for one only then.
 */
export class OwnerLease {
  /** The claims' owner. */
  readonly name: string;
  /** The slot's identity (also usable as the Kafka static member id), not a name of this process's own. */
  readonly stable: boolean;
  readonly #valkey: LeaseValkey;
  readonly #key: string;
  readonly #prefix: string;
  readonly #options: OwnerLeaseOptions;
  readonly #clock: LeaseClock;
  /** The clock's time before which claims must not be used: a dead predecessor's insert may still land. */
  readonly #usableAt: number;
  #state: LeaseState;
  #lost = false;
  readonly #stopRenewing: () => void;

  private constructor(
    valkey: LeaseValkey,
    options: OwnerLeaseOptions,
    name: string,
    prefix: string,
    state: LeaseState,
    waitMs: number,
  ) {
    this.#valkey = valkey;
    this.#state = state;
    this.#options = options;
    this.name = name;
    this.stable = name === options.identity;
    this.#key = options.keyPrefix + name;
    this.#prefix = prefix;
    this.#clock = options.clock ?? systemLeaseClock;
    this.#usableAt = this.#clock.now() + waitMs;
    this.#stopRenewing = this.#clock.every(options.ttlMs / RENEWALS_PER_TTL, () => void this.#renew().catch(() => {}));
  }

  /**
   * Leases the slot's identity, or a name of this process's own. While Valkey cannot be reached it retries for
   * ACQUIRE_PATIENCE_MS, then goes on under a name of its own (leased by its first claim): the worker joins its
   * group and retries its batches as before, instead of hiding its trouble in a start that never ends.
   */
  static async acquire(valkey: ValkeyClient, options: OwnerLeaseOptions): Promise<OwnerLease> {
    const leasing = valkey as LeaseValkey;
    leasing.defineCommand("takeOwnerLease", { numberOfKeys: 1, lua: TAKE });
    leasing.defineCommand("renewOwnerLease", { numberOfKeys: 1, lua: RENEW });
    leasing.defineCommand("releaseOwnerLease", { numberOfKeys: 1, lua: RELEASE });
    const here = { pidSpace: currentPidSpace(), pid: process.pid, token: randomBytes(6).toString("hex") };
    const { identity, keyPrefix, ttlMs, insertTimeoutMs, logger } = options;
    const clock = options.clock ?? systemLeaseClock;
    // Nobody else ever uses a unique name: its lease is set by the first renewal.
    const ownName = (why: string) => {
      const lease = new OwnerLease(leasing, options, uniqueOwner(), holderPrefix(here), "idle", 0);
      logger.warn({ identity, name: lease.name }, why);
      return lease;
    };
    const giveUpAt = clock.now() + ACQUIRE_PATIENCE_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        for (let round = 0; round < ACQUIRE_ROUNDS; round++) {
          const current = (await leasing.get(keyPrefix + identity)) ?? "";
          const holder = current === "" ? undefined : parseHolder(current);
          if (current !== "" && !(holder && isProvablyDead(holder, here, processIsAlive))) break;
          const prefix = holderPrefix(here);
          const taken = await leasing.takeOwnerLease(keyPrefix + identity, current, prefix, insertTimeoutMs, ttlMs);
          if (taken) {
            const [waitMs, state] = taken;
            logger.info({ identity, predecessorPid: holder?.pid, waitMs }, "worker identity leased");
            return new OwnerLease(leasing, options, identity, prefix, state, waitMs);
          }
        }
        return ownName("worker identity held by a live process: claiming under a name of its own");
      } catch (error) {
        if (clock.now() >= giveUpAt) {
          return ownName("valkey unreachable: claiming under a name of its own (a restart waits for the takeover)");
        }
        // The first failure is the usual one: the connection is not up yet.
        if (attempt > 0) logger.warn({ err: error }, "valkey: cannot lease the worker identity; retrying");
        await clock.sleep(Math.min(1_000, 100 * 2 ** attempt));
      }
    }
  }

  /**
   * Before a batch's claims are used: waits out a dead predecessor's last insert, then marks the lease `claimed`
   * (an insert may follow) and renews it. Rejects once another process holds the name.
   */
  async claiming(): Promise<void> {
    const wait = this.#usableAt - this.#clock.now();
    if (wait > 0) await this.#clock.sleep(wait);
    this.#state = "claimed";
    await this.#renew();
  }

  /** Every insert this process sent was answered: a successor need not wait for one. Never rejects. */
  settled(): void {
    // Before then a predecessor's insert may still land (a batch with nothing to claim waits for nothing).
    if (this.#clock.now() < this.#usableAt) return;
    this.#state = "idle";
    this.#renew().catch(() => {});
  }

  /**
   * At a stop: frees the name for the slot's next process if every insert was answered; otherwise leaves it
   * `claimed`, and the next process takes it over from this dead one and waits for that insert.
   */
  async release(): Promise<void> {
    this.#stopRenewing();
    if (!this.#lost && this.#state === "idle") await this.#valkey.releaseOwnerLease(this.#key, this.#prefix);
  }

  async #renew(): Promise<void> {
    if (this.#lost) throw new OwnerLeaseLostError(`another process holds the worker name ${this.name}`);
    if (await this.#valkey.renewOwnerLease(this.#key, this.#prefix, this.#state, this.#options.ttlMs)) return;
    if (!this.#lost) {
      this.#lost = true;
      this.#stopRenewing();
      this.#options.logger.error({ name: this.name }, "another process took this worker's name: stopping");
      this.#options.onLost();
    }
    throw new OwnerLeaseLostError(`another process holds the worker name ${this.name}`);
  }
}
