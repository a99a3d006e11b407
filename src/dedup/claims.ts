import type { Redis } from "iovalkey";

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
 * - replay: claimed earlier by this very position (a crash or rebalance replay): ClickHouse decides
 *   whether it was stored; the claim now belongs to this worker;
 * - busy: claimed by this position moments ago by another worker that may still be storing it.
 */
export type ClaimOutcome = "new" | "duplicate" | "replay" | "busy";

const OUTCOMES: readonly ClaimOutcome[] = ["duplicate", "new", "replay", "busy"];

export interface ClaimOptions {
  /** Key prefix: claims of different streams (and test files) never meet. */
  keyPrefix: string;
  /** A claim lives this long after the id's first sighting; then the id counts again. */
  windowSeconds: number;
  /** Names this worker process in its claims. */
  owner: string;
  /** A same-position claim of another worker older than this is taken over: that worker is gone or gave up. */
  takeoverAfterMs: number;
}

/** Claims per script call: keeps each call's argument list and Valkey's pause short. */
const CHUNK = 5_000;

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

type ClaimingRedis = Redis & {
  claimImpressions(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
};

export function formatPosition(position: Position): string {
  return `${position.topic}:${position.partition}:${position.offset}`;
}

/** Claims ids in Valkey in one round trip (a pipeline of script calls), returning one outcome per id. */
export class ClaimStore {
  readonly #redis: ClaimingRedis;
  readonly #options: ClaimOptions;

  constructor(redis: Redis, options: ClaimOptions) {
    redis.defineCommand("claimImpressions", { lua: CLAIM_SCRIPT });
    this.#redis = redis as ClaimingRedis;
    this.#options = options;
  }

  async claim(items: readonly { id: string; position: Position }[]): Promise<ClaimOutcome[]> {
    if (items.length === 0) return [];
    const { keyPrefix, windowSeconds, owner, takeoverAfterMs } = this.#options;
    const pipeline = this.#redis.pipeline() as unknown as {
      claimImpressions(numKeys: number, ...keysAndArgs: (string | number)[]): void;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (let start = 0; start < items.length; start += CHUNK) {
      const chunk = items.slice(start, start + CHUNK);
      const keys = chunk.map((item) => keyPrefix + item.id);
      const positions = chunk.map((item) => formatPosition(item.position));
      pipeline.claimImpressions(chunk.length, ...keys, windowSeconds, owner, takeoverAfterMs, ...positions);
    }
    const replies = await pipeline.exec();
    if (!replies) throw new Error("valkey: the claim pipeline was discarded");
    const outcomes: ClaimOutcome[] = [];
    for (const [error, reply] of replies) {
      if (error) throw error;
      for (const code of reply as number[]) {
        const outcome = OUTCOMES[code];
        if (!outcome) throw new Error(`valkey: unexpected claim reply ${code}`);
        outcomes.push(outcome);
      }
    }
    return outcomes;
  }
}
