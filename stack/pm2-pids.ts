import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { processIsAlive } from "../src/dedup/lease-holder.ts";
import { repoRoot } from "./paths.ts";

/** An app of ecosystem.config.cjs, as far as the benchmarks and test runs read it. */
export interface Pm2App {
  name: string;
  script: string;
  node_args?: string[];
  env?: Record<string, string>;
}

/** The apps of `root`'s ecosystem.config.cjs: this checkout's by default, another's for a side-by-side benchmark. */
export function ecosystemApps(root = repoRoot): Pm2App[] {
  return (createRequire(import.meta.url)(join(root, "ecosystem.config.cjs")) as { apps: Pm2App[] }).apps;
}

/**
 * The pm2 apps of ecosystem.config.cjs that run the API, by role: the query API's (API_ROLE=query) and the others.
 * Told by the ecosystem file, not by a process's environment: a cluster-mode process's /proc environ does not hold
 * the env pm2 gives it.
 */
export function apiAppsByRole(root = repoRoot): { ingest: string[]; query: string[] } {
  const api = ecosystemApps(root).filter((app) => app.script === "src/api/main.ts");
  return {
    ingest: api.filter((app) => app.env?.API_ROLE !== "query").map((app) => app.name),
    query: api.filter((app) => app.env?.API_ROLE === "query").map((app) => app.name),
  };
}

/** The live processes of pm2 apps `names`, from the pid files pm2 keeps in its home (`<app>-<pm_id>.pid`). */
export function pm2Pids(pm2Home: string, names: string[]): number[] {
  let files: string[];
  try {
    files = readdirSync(join(pm2Home, "pids"));
  } catch {
    return [];
  }
  return files
    .filter((file) => names.some((name) => new RegExp(`^${name}-\\d+\\.pid$`).test(file)))
    .map((file) => Number(readFileSync(join(pm2Home, "pids", file), "utf8").trim()))
    .filter((pid) => Number.isInteger(pid) && processIsAlive(pid));
}
