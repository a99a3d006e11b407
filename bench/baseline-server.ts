import { createServer } from "node:http";

/**
 * The ceiling for POST /event: a bare node:http server that reads the body, parses the same JSON and
 * answers 204, with no framework, validation or Kafka. Listens on PORT.
 */
const port = Number(process.env.PORT ?? 3999);

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString("utf8"));
      response.writeHead(204).end();
    } catch {
      response.writeHead(400, { "content-type": "application/json" }).end('{"error":"malformed_json"}');
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1");
process.once("SIGTERM", () => server.close(() => process.exit(0)));
