import type { OwnerLease } from "./owner-lease.ts";
import type { ValkeyClient } from "./valkey.ts";

/** Where an event sits in Kafka: a replay of the same message has the same position. */
export interface Position {
  topic: string;
  partition: number;
  offset: bigint;
}

/**
 * What Valkey says about an id:
 * - new: claimed just now, nobody counted it in the window;
 * - duplicate: claimed by another Kafka position, an earlier copy of the event;
 * - replay: claimed earlier by this very position (a crash or rebalance replay) under this worker's name (its own,
 *   or its slot's dead predecessor's), or long ago under another: ClickHouse decides whether it was stored; the
 *   claim now belongs to this worker;
 * - busy: claimed by this position moments ago under another name, by a worker that may still be storing it.
 */
export type ClaimOutcome = "new" | "duplicate" | "replay" | "busy";

const OUTCOMES: readonly ClaimOutcome[] = ["duplicate", "new", "replay", "busy"];

export interface ClaimOptions {
  /** Key prefix: claims of different streams (and test files) never meet. */
  keyPrefix: string;
  /** A claim lives this long after the id's first sighting; then the id counts again. */
  windowSeconds: number;
  /**
   * Names this worker process in its claims: a name no other process uses, or a leased one (a worker's), which
   * every claim call confirms: no outcome is returned unless this process still holds it.
   */
  owner: string | OwnerLease;
  /** A same-position claim of another worker older than this is taken over: that worker is gone or gave up. */
  takeoverAfterMs: number;
}

/** Claims per script call: keeps each call's argument list and Valkey's pause short. */
const CHUNK = 5_000;
/**
 * In a cluster, a script may only touch keys of one hash slot, so each id's key carries a hash tag, one of
 * this many: a batch's claims become at most this many script calls, spread over the cluster's nodes.
 */
const CLUSTER_KEY_GROUPS = 256;

/**
 * The key of a claim (an event's dedup key: its id, or its kind and id, src/impression/fields.ts dedupKey): in a
 * cluster it carries the key's group as a hash tag.
 */
export function claimKey(keyPrefix: string, key: string, cluster: boolean): string {
  return cluster ? `${keyPrefix}{${keyGroup(key)}}${key}` : keyPrefix + key;
}

/** FNV-1a of the claimed key, to pick its key group. */
function keyGroup(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % CLUSTER_KEY_GROUPS;
}

/**
 * One atomic step per id, with Valkey's clock (workers' clocks may differ). A claim's value is
 * `position|owner|claimedAtMs`; SET NX EX gives the window, KEEPTTL keeps it on takeover so the window
 * still runs from the first sighting.
 */
const CLAIM_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = ARGV[1]
local owner = ARGV[2]
local takeover = tonumber(ARGV[3])
local out = {}
for i, key in ipairs(KEYS) do
  local position = ARGV[i + 3]
  local mine = position .. '|' .. owner .. '|' .. now
  if redis.call('SET', key, mine, 'NX', 'EX', window) then
    out[i] = 1
  else
    local claimed = redis.call('GET', key)
    local p, o, at = string.match(claimed or '', '^(.*)|(.*)|(%d+)$')
    if p ~= position then
      out[i] = 0
    elseif o == owner or now - tonumber(at) >= takeover then
      redis.call('SET', key, mine, 'XX', 'KEEPTTL')
      out[i] = 2
    else
      out[i] = 3
    end
  end
end
return out
`;

type ClaimingValkey = ValkeyClient & {
  claimImpressions(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
};

/**
 * One claim: what is claimed (an event's `dedupKey`: an impression's id, `<kind>|<id>` for another kind, so an
 * impression keeps the key `seen:<topic>:<id>` it had before kinds existed) for the position of the copy read.
 */
interface Claim {
  key: string;
  position: Position;
}

export function formatPosition(position: Position): string {
  return `${position.topic}:${position.partition}:${position.offset}`;
}

/**
 * Claims ids in Valkey, returning one outcome per id. On one server: a pipeline of script calls, one round
 * trip. In a cluster: one script call per key group, all sent at once, each to the node that holds its group.
 */
export class ClaimStore {
  readonly #valkey: ClaimingValkey;
  readonly #options: ClaimOptions;

  constructor(valkey: ValkeyClient, options: ClaimOptions) {
    valkey.defineCommand("claimImpressions", { lua: CLAIM_SCRIPT });
    this.#valkey = valkey as ClaimingValkey;
    this.#options = options;
  }

  async claim(items: readonly Claim[]): Promise<ClaimOutcome[]> {
    if (items.length === 0) return [];
    const claiming = this.#valkey.isCluster ? this.#claimInCluster(items) : this.#claimOnOneServer(items);
    const { owner } = this.#options;
    if (typeof owner === "string") return claiming;
    // In parallel: a claim stamped after the name was lost is harmless, as this process inserts nothing then.
    const [, outcomes] = await Promise.all([owner.claiming(), claiming]);
    return outcomes;
  }

  async #claimOnOneServer(items: readonly Claim[]): Promise<ClaimOutcome[]> {
    const pipeline = this.#valkey.pipeline() as unknown as {
      claimImpressions(numKeys: number, ...keysAndArgs: (string | number)[]): void;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (let start = 0; start < items.length; start += CHUNK) {
      const chunk = items.slice(start, start + CHUNK);
      pipeline.claimImpressions(
        chunk.length,
        ...this.#arguments(chunk, (item) => claimKey(this.#options.keyPrefix, item.key, false)),
      );
    }
    const replies = await pipeline.exec();
    if (!replies) throw new Error("valkey: the claim pipeline was discarded");
    const outcomes: ClaimOutcome[] = [];
    for (const [error, reply] of replies) {
      if (error) throw error;
      for (const code of reply as number[]) outcomes.push(toOutcome(code));
    }
    return outcomes;
  }

  async #claimInCluster(items: readonly Claim[]): Promise<ClaimOutcome[]> {
    const groups = new Map<number, number[]>();
    for (const [index, item] of items.entries()) {
      const group = keyGroup(item.key);
      const members = groups.get(group);
      if (members) members.push(index);
      else groups.set(group, [index]);
    }
    const outcomes = new Array<ClaimOutcome>(items.length);
    await Promise.all(
      [...groups.values()].map(async (indexes) => {
        const members = indexes.map((i) => items[i] as Claim);
        const args = this.#arguments(members, (item) => claimKey(this.#options.keyPrefix, item.key, true));
        const reply = await this.#valkey.claimImpressions(members.length, ...args);
        for (const [k, i] of indexes.entries()) outcomes[i] = toOutcome(reply[k]);
      }),
    );
    return outcomes;
  }

  /** The script's keys, then its arguments: window, owner, takeover time, one position per key. */
  #arguments(items: readonly Claim[], key: (item: Claim) => string): (string | number)[] {
    const { windowSeconds, owner, takeoverAfterMs } = this.#options;
    const name = typeof owner === "string" ? owner : owner.name;
    return [...items.map(key), windowSeconds, name, takeoverAfterMs, ...items.map((i) => formatPosition(i.position))];
  }
}

function toOutcome(code: number | undefined): ClaimOutcome {
  const outcome = code === undefined ? undefined : OUTCOMES[code];
  if (!outcome) throw new Error(`valkey: unexpected claim reply ${code}`);
  return outcome;
}
