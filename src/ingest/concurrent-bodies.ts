import { AppError } from "../errors.ts";

export interface BodyCaps {
  /** Bodies one client (IPv4 address, IPv6 /64) may send at once; 0: no cap. */
  perClient: number;
  /** Bodies one API key may send at once; 0: no cap. */
  perKey: number;
}

/**
 * Counts the bodies arriving at once by client and by key, and refuses one more over either cap with
 * `429 too_many_bodies`: one client cannot hold all the connections and buffers of an API process with slow
 * bodies. Counts live in this process (like the rate limits).
 */
export class ConcurrentBodies {
  readonly #caps: BodyCaps;
  readonly #byClient = new Map<string, number>();
  readonly #byKey = new Map<string, number>();

  constructor(caps: BodyCaps) {
    this.#caps = caps;
  }

  /** Counts one more body of `client` and `key`, or throws 429 too_many_bodies (counting nothing). */
  enter(client: string, key: string | undefined): void {
    const clientCount = this.#byClient.get(client) ?? 0;
    if (this.#caps.perClient > 0 && clientCount >= this.#caps.perClient) {
      throw new AppError(
        "too_many_bodies",
        `this client (${client}) already sends ${clientCount} bodies at once, the most one client may; retry shortly`,
      );
    }
    if (key !== undefined) {
      const keyCount = this.#byKey.get(key) ?? 0;
      if (this.#caps.perKey > 0 && keyCount >= this.#caps.perKey) {
        throw new AppError(
          "too_many_bodies",
          `key "${key}" already sends ${keyCount} bodies at once, the most one key may; retry shortly`,
        );
      }
      this.#byKey.set(key, keyCount + 1);
    }
    this.#byClient.set(client, clientCount + 1);
  }

  /** The body counted by enter() has ended. */
  leave(client: string, key: string | undefined): void {
    decrement(this.#byClient, client);
    if (key !== undefined) decrement(this.#byKey, key);
  }

  /** Bodies of `client` arriving now (for tests). */
  ofClient(client: string): number {
    return this.#byClient.get(client) ?? 0;
  }
}

function decrement(counts: Map<string, number>, name: string): void {
  const count = counts.get(name) ?? 0;
  if (count <= 1) counts.delete(name);
  else counts.set(name, count - 1);
}
