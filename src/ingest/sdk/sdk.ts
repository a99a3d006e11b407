import { readFileSync } from "node:fs";

/** The page tag (tag.js next to this module), served at GET /sdk.js; read once, at import. */
export const SDK_SCRIPT: string = readFileSync(new URL("./tag.js", import.meta.url), "utf8");

/** The tag's weight limit, gzipped: it loads on every publisher page (served as written, comments and all). */
export const SDK_MAX_GZIP_BYTES = 3072;
