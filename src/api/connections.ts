import type { Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/**
 * The open connections of `server`, for a stop: once the server stops listening, a connection that carries no
 * request being answered has nothing more to wait for. Node's closeIdleConnections() closes those between two
 * requests, not those still sending a request's headers (a slow or stalled sender), which would hold the stop
 * until their timeout.
 */
export function trackConnections(server: Server): { closeStalled(): void } {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  return {
    /** Closes every connection without a request whose answer is under way (those with one finish first). */
    closeStalled() {
      server.closeIdleConnections();
      for (const socket of sockets) {
        // The response in hand, as Node's closeIdleConnections() itself tells one: none until headers are in.
        const response = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
        if (!response) socket.destroy();
      }
    },
  };
}
