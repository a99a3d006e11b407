import { fileURLToPath } from "node:url";

/** The repository root: engines' caches and data live below it, git-ignored. */
export const repoRoot = fileURLToPath(new URL("../", import.meta.url));
