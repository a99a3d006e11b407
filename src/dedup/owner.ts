import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/** A claims owner no other process uses: this host, this process and a random tag. */
export function uniqueOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
}
