import { createRequire } from "node:module";

interface Pm2App {
  name: string;
  node_args?: string[];
}

/** The node arguments pm2 gives the `api` app (ecosystem.config.cjs), so benchmarks run what production runs. */
export function apiNodeArgs(): string[] {
  const { apps } = createRequire(import.meta.url)("../ecosystem.config.cjs") as { apps: Pm2App[] };
  return apps.find((app) => app.name === "api")?.node_args ?? [];
}
