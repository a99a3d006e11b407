import { once } from "node:events";
import { connect, type Socket } from "node:net";

/** What a raw connection got: the status and JSON body of the first answer (if any) and when it was closed. */
export interface RawOutcome {
  status: number | undefined;
  body: { error?: string; message?: string } | undefined;
  /** Whether the answer said `Connection: close`. */
  closesConnection: boolean;
  /** Milliseconds from the connection's start to the server closing it. */
  closedAfterMs: number;
}

/** A connection that speaks HTTP/1.1 by hand, to send what no well-behaved client does: stalled headers or bodies. */
export interface RawSender {
  socket: Socket;
  /** Resolves once the connection is closed, with what the server answered on it. */
  outcome: Promise<RawOutcome>;
  /** Resolves with the first answer once it has arrived whole, the connection closed or not (keep-alive); its
   * closedAfterMs is then when it arrived. */
  answer: Promise<RawOutcome>;
}

/** Opens a connection to `port` and writes `text` (say, headers and the first bytes of a body), then nothing more. */
export async function rawSender(port: number, text: string): Promise<RawSender> {
  const socket = connect(port, "127.0.0.1");
  const started = Date.now();
  let received = "";
  socket.setEncoding("latin1");
  socket.on("data", (chunk: string) => {
    received += chunk;
  });
  // A reset after the answer (the server closed a socket it had not read to the end) is a close like any other.
  socket.on("error", () => {});
  /** The first answer so far, and whether all of its body is in. */
  const firstAnswer = (): { outcome: RawOutcome; whole: boolean } | undefined => {
    const match = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(received);
    if (!match) return undefined;
    const head = match[2] ?? "";
    const length = Number(/^content-length: *(\d+)$/im.exec(head)?.[1] ?? 0);
    const text = (match[3] ?? "").slice(0, length);
    let body: RawOutcome["body"];
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    const closesConnection = /^connection: close$/im.test(head);
    const outcome = { status: Number(match[1]), body, closesConnection, closedAfterMs: Date.now() - started };
    return { outcome, whole: text.length === length };
  };
  const answer = new Promise<RawOutcome>((resolve) => {
    const check = () => {
      const first = firstAnswer();
      if (!first?.whole) return;
      socket.off("data", check);
      resolve(first.outcome);
    };
    socket.on("data", check);
  });
  const outcome = once(socket, "close").then(
    (): RawOutcome =>
      firstAnswer()?.outcome ?? {
        status: undefined,
        body: undefined,
        closesConnection: false,
        closedAfterMs: Date.now() - started,
      },
  );
  await once(socket, "connect");
  socket.write(text);
  return { socket, outcome, answer };
}

/** The head of a POST to `path` declaring `contentLength` bytes of `contentType`, with `headers` added. */
export function postHead(
  path: string,
  contentLength: number,
  contentType = "application/json",
  headers: Record<string, string> = {},
): string {
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  return `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${contentType}\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`;
}
