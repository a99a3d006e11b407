import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

/** Long enough for bytes to cross loopback many times over: silence this long means they were held. */
const QUIET_MS = 150;

/** What one end of a connection received, and whether it saw a FIN or a reset. */
interface Seen {
  data: string;
  ended: boolean;
  closed: boolean;
}

function watch(socket: Socket): Seen {
  const seen: Seen = { data: "", ended: false, closed: false };
  socket.on("data", (chunk) => {
    seen.data += chunk;
  });
  socket.on("end", () => {
    seen.ended = true;
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    seen.closed = true;
  });
  return seen;
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(10);
  expect(condition()).toBe(true);
}

let server: Server;
let proxy: TcpProxy;
const serverSides: Socket[] = [];
const serverSeen: Seen[] = [];
const clients: Socket[] = [];

/** A server that answers each chunk with `re:<chunk>`, behind a proxy. */
async function start(): Promise<void> {
  server = createServer({ allowHalfOpen: true }, (socket) => {
    serverSides.push(socket);
    serverSeen.push(watch(socket));
    socket.on("data", (chunk) => socket.write(`re:${chunk}`));
    socket.on("end", () => socket.end());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  proxy = await startTcpProxy({ host: "127.0.0.1", port: (server.address() as { port: number }).port });
}

async function client(): Promise<{ socket: Socket; seen: Seen }> {
  const socket = connect({ host: "127.0.0.1", port: proxy.port, allowHalfOpen: true });
  clients.push(socket);
  const seen = watch(socket);
  await once(socket, "connect");
  return { socket, seen };
}

afterEach(async () => {
  for (const socket of clients.splice(0)) socket.destroy();
  await proxy.close();
  for (const socket of serverSides.splice(0)) socket.destroy();
  serverSeen.splice(0);
  await new Promise((resolve) => server.close(resolve));
});

describe("the test's TCP proxy", () => {
  it("passes bytes both ways and an orderly close", async () => {
    await start();
    const { socket, seen } = await client();
    socket.write("a");
    await until(() => seen.data === "re:a");
    socket.end();
    await until(() => seen.ended && serverSeen[0]?.ended === true);
  });

  it("blackholes without a FIN or a reset, and delivers everything held, in order, at the heal", async () => {
    await start();
    const { socket, seen } = await client();
    socket.write("a");
    await until(() => seen.data === "re:a");
    proxy.blackhole();
    socket.write("b");
    serverSides[0]?.write("late");
    socket.end();
    await sleep(QUIET_MS);
    expect(serverSeen[0]).toEqual({ data: "a", ended: false, closed: false });
    expect(seen).toEqual({ data: "re:a", ended: false, closed: false });
    proxy.heal();
    await until(() => seen.data === "re:alatere:b" && seen.ended && serverSeen[0]?.ended === true);
  });

  it("accepts a connection during a blackhole but lets the server hear of it only at the heal", async () => {
    await start();
    proxy.blackhole();
    const { socket, seen } = await client();
    socket.write("x");
    await sleep(QUIET_MS);
    expect(serverSides).toHaveLength(0);
    expect(seen.closed).toBe(false);
    proxy.heal();
    await until(() => seen.data === "re:x");
    expect(proxy.accepted).toBe(1);
  });

  it("heals forgetting the connections established before the cut: they stay silent, new ones pass", async () => {
    await start();
    const old = await client();
    old.socket.write("a");
    await until(() => old.seen.data === "re:a");
    proxy.blackhole();
    const during = await client();
    during.socket.write("b");
    old.socket.write("lost");
    proxy.heal({ forget: true });
    await until(() => during.seen.data === "re:b");
    const after = await client();
    after.socket.write("c");
    await until(() => after.seen.data === "re:c");
    old.socket.write("lost too");
    old.socket.end();
    await sleep(QUIET_MS);
    expect(serverSeen[0]).toEqual({ data: "a", ended: false, closed: false });
    expect(old.seen).toEqual({ data: "re:a", ended: false, closed: false });
  });

  it("cuts before a matching request (held) or after it (delivered, its answer held)", async () => {
    await start();
    const { socket, seen } = await client();
    const cut = proxy.cutAt("up", (chunk) => chunk.includes("insert"), "before");
    socket.write("select");
    await until(() => seen.data === "re:select");
    socket.write("insert");
    await cut;
    await sleep(QUIET_MS);
    expect(serverSeen[0]?.data).toBe("select");
    proxy.heal();
    await until(() => seen.data === "re:selectre:insert");

    const answered = proxy.cutAt("down", (chunk) => chunk.includes("re:commit"), "before");
    socket.write("commit");
    await answered;
    await sleep(QUIET_MS);
    expect(serverSeen[0]?.data).toBe("selectinsertcommit");
    expect(seen.data).toBe("re:selectre:insert");
    expect(proxy.blackholed).toBe(true);
    proxy.heal();
    await until(() => seen.data === "re:selectre:insertre:commit");
  });

  it("cuts after a matching request: the server gets it, the answer waits for the heal", async () => {
    await start();
    const { socket, seen } = await client();
    const cut = proxy.cutAt("up", (chunk) => chunk.includes("produce"), "after");
    socket.write("produce");
    await cut;
    await until(() => serverSeen[0]?.data === "produce");
    await sleep(QUIET_MS);
    expect(seen.data).toBe("");
    proxy.heal();
    await until(() => seen.data === "re:produce");
  });
});
