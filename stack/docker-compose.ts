import { ensureDebianPackage } from "./debian.ts";

/** Debian's docker-compose (1.29), to validate the compose files without a Docker engine. */
export async function ensureDockerCompose(): Promise<string> {
  return (await ensureDebianPackage("docker-compose", ["docker-compose"]))["docker-compose"];
}

// `node stack/docker-compose.ts` (run by `npm test` before the suite): install it once, before test files race to.
if (import.meta.main) console.log(`[setup] docker-compose: ${await ensureDockerCompose()}`);
