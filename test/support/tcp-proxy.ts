import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";

/** Which way bytes flow through the proxy: from the client to the server (requests) or back (answers). */
export type Direction = "up" | "down";

/** Decides whether a chunk is the one a cut or a watch waits for. */
export type ChunkMatch = (chunk: Buffer) => boolean;

/**
 * A TCP proxy a test controls, to cut a connection without a reset: what a peer sees when packets are dropped.
 *
 * - `pass`: forwards both ways, half-closes and resets included.
 * - `blackhole()`: stops reading from and writing to both sockets of every connection. Nothing is closed, no FIN
 *   and no RST is sent either way; bytes already sent stay queued (in the proxy or in the kernels' buffers). A
 *   connection opened meanwhile is accepted and held, unforwarded: the server hears of it only at `heal()`, like a
 *   SYN dropped and retransmitted after the partition. (Not refusing it: a refusal is a reset, which a client
 *   notices at once; a drop is silence. A client sees its connect succeed and then no answer, where a real drop
 *   leaves the connect itself unanswered; every client here bounds both with its timeouts.) A FIN or reset a peer
 *   sends meanwhile is passed on only at `heal()`, after the bytes held before it.
 * - `heal()`: forwards everything held, in order, as TCP retransmission would once the partition ends, and
 *   connects the connections opened meanwhile.
 * - `heal({ forget: true })`: new connections pass again, and so do those opened during the blackhole, but the
 *   connections that were established when it began stay silent for good: nothing held is delivered, nothing
 *   more passes either way, still no FIN or reset. That is what a NAT or a stateful firewall that lost their state
 *   during the partition does (it drops every later packet of theirs); only a client's own timeouts get it out.
 *
 * Not modelled: the kernel keeps acknowledging what the proxy does not read, so TCP keepalive probes are answered
 * during a blackhole. The code under test must notice a cut by its own timeouts, never by keepalive.
 */
export interface TcpProxy {
  /** `127.0.0.1:<port>`, where clients connect. */
  readonly address: string;
  readonly port: number;
  /** Connections opened through the proxy so far. */
  readonly accepted: number;
  readonly blackholed: boolean;
  blackhole(): void;
  heal(options?: { forget?: boolean }): void;
  /**
   * Cuts at the next chunk flowing `direction` that `match` accepts: `before` holds that chunk (the peer never
   * gets it until the heal), `after` delivers it first (the peer acts on it; its answer is held). Resolves then.
   */
  cutAt(direction: Direction, match: ChunkMatch, when: "before" | "after"): Promise<void>;
  /** Resolves once a chunk flowing `direction` that `match` accepts was forwarded. */
  seen(direction: Direction, match: ChunkMatch): Promise<void>;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/** What one side did that waits for a heal while the proxy is blackholed: bytes, a half-close or a reset. */
type Held = Buffer | "end" | "reset";

/** One side of a proxied connection: its socket, what it sent that is still held, whether it is gone. */
interface Side {
  socket: Socket;
  held: Held[];
  /** The socket closed (a FIN both ways, or a reset): nothing more comes from it. */
  closed: boolean;
}

interface Pair {
  /** Forgotten by a heal: nothing passes any more, either way. */
  forgotten: boolean;
  client: Side;
  /** Undefined until the server is connected: for a connection accepted during a blackhole, at the heal. */
  server: Side | undefined;
}

interface Trigger {
  direction: Direction;
  match: ChunkMatch;
  /** Runs before the chunk is forwarded; true if the chunk must be held. */
  fire: () => boolean;
}

export async function startTcpProxy(upstream: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let triggers: Trigger[] = [];
  let blackholed = false;
  let accepted = 0;

  const sideOf = (socket: Socket): Side => ({ socket, held: [], closed: false });

  const apply = (to: Side, item: Held) => {
    if (to.closed || to.socket.destroyed) return;
    if (item === "end") to.socket.end();
    else if (item === "reset") to.socket.resetAndDestroy();
    else to.socket.write(item);
  };

  /**
   * Passes what `from` produced on to `to`, unless it must wait: while blackholed (but for the chunk a cut lets
   * through), while `to` is not connected yet, or behind what `from` already has held.
   */
  const deliver = (pair: Pair, from: Side, to: Side | undefined, item: Held, letThrough = false) => {
    if (pair.forgotten) return;
    if ((blackholed && !letThrough) || to === undefined || from.held.length > 0) from.held.push(item);
    else apply(to, item);
  };

  const flush = (from: Side, to: Side | undefined) => {
    if (to === undefined) return;
    for (const item of from.held.splice(0)) apply(to, item);
  };

  const onChunk = (pair: Pair, direction: Direction, chunk: Buffer) => {
    if (pair.forgotten) return;
    const [from, to] = direction === "up" ? [pair.client, pair.server] : [pair.server as Side, pair.client];
    if (blackholed) {
      from.held.push(chunk);
      return;
    }
    const fired = triggers.filter((t) => t.direction === direction && t.match(chunk));
    triggers = triggers.filter((t) => !fired.includes(t));
    let hold = false;
    for (const trigger of fired) hold = trigger.fire() || hold;
    if (hold) from.held.push(chunk);
    else deliver(pair, from, to, chunk, true);
  };

  const wire = (pair: Pair, side: Side, direction: Direction) => {
    const { socket } = side;
    socket.on("data", (chunk: Buffer) => onChunk(pair, direction, chunk));
    socket.on("end", () => {
      const other = direction === "up" ? pair.server : pair.client;
      deliver(pair, side, other, "end");
    });
    socket.on("error", () => {});
    socket.on("close", (hadError) => {
      side.closed = true;
      const other = direction === "up" ? pair.server : pair.client;
      // A reset (or an error) is passed on as a reset; an orderly close was passed on by "end".
      if (hadError || !socket.readableEnded) deliver(pair, side, other, "reset");
      if (pair.client.closed && (pair.server === undefined || pair.server.closed)) pairs.delete(pair);
    });
    if (blackholed) socket.pause();
  };

  const connectServer = (pair: Pair) => {
    const socket = connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true });
    socket.setNoDelay(true);
    const server = sideOf(socket);
    pair.server = server;
    wire(pair, server, "down");
    // The client's bytes wait in its held queue until the server socket is connected (writes queue till then).
    flush(pair.client, server);
  };

  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    accepted++;
    socket.setNoDelay(true);
    const pair: Pair = { forgotten: false, client: sideOf(socket), server: undefined };
    pairs.add(pair);
    wire(pair, pair.client, "up");
    if (!blackholed) {
      connectServer(pair);
      socket.resume();
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;

  const pauseAll = () => {
    for (const pair of pairs) {
      pair.client.socket.pause();
      pair.server?.socket.pause();
    }
  };

  const proxy: TcpProxy = {
    address: `127.0.0.1:${port}`,
    port,
    get accepted() {
      return accepted;
    },
    get blackholed() {
      return blackholed;
    },
    blackhole() {
      blackholed = true;
      pauseAll();
    },
    heal({ forget = false } = {}) {
      blackholed = false;
      for (const pair of [...pairs]) {
        if (pair.forgotten) continue;
        if (forget && pair.server !== undefined) {
          pair.forgotten = true;
          pair.client.held = [];
          pair.server.held = [];
          continue;
        }
        if (pair.server === undefined) {
          // Accepted during the blackhole: its SYN "gets through" now, unless the client gave up meanwhile.
          if (pair.client.socket.destroyed) {
            pairs.delete(pair);
            continue;
          }
          connectServer(pair);
        }
        flush(pair.client, pair.server);
        flush(pair.server as Side, pair.client);
        pair.client.socket.resume();
        pair.server?.socket.resume();
      }
    },
    cutAt(direction, match, when) {
      return new Promise((resolve) => {
        triggers.push({
          direction,
          match,
          fire: () => {
            blackholed = true;
            pauseAll();
            resolve();
            return when === "before";
          },
        });
      });
    },
    seen(direction, match) {
      return new Promise((resolve) => {
        triggers.push({
          direction,
          match,
          fire: () => {
            resolve();
            return false;
          },
        });
      });
    },
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const pair of pairs) {
        pair.client.socket.destroy();
        pair.server?.socket.destroy();
      }
      pairs.clear();
      await closed;
    },
  };
  return proxy;
}
