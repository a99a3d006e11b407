import { hash, randomBytes } from "node:crypto";
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { lock } from "proper-lockfile";
import { z } from "zod";
import { CLICK_DOMAIN, isOrigin } from "../config.ts";

/** Why a keys file was refused: missing, unreadable, not a valid keys file, or valid but naming no key. */
export type KeysFileProblem = "not_found" | "unreadable" | "invalid" | "no_keys";

/** The keys file cannot be read, is not JSON, or does not match the format; the message names the file. */
export class KeysFileError extends Error {
  override name = "KeysFileError";
  readonly problem: KeysFileProblem;
  constructor(message: string, problem: KeysFileProblem) {
    super(message);
    this.problem = problem;
  }
}

export const SCOPES = ["ingest", "query"] as const;
export type Scope = (typeof SCOPES)[number];

export const KEY_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** How every query key's secret starts: a URL holding this is refused whatever the parameter (key-in-url.ts). */
export const QUERY_KEY_PREFIX = "imp_qry_";
const INGEST_KEY_PREFIX = "imp_ing_";

/** An ad id pattern of a tenant's query key: ad id characters, `*` for any run of them (say `acme-*`). */
export const AD_PATTERN = /^[A-Za-z0-9._:*-]{1,128}$/;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex characters");
const instant = z.iso.datetime({ offset: true });

const keySchema = z
  .strictObject({
    name: z.string().regex(KEY_NAME, "must be 1-64 characters of A-Z a-z 0-9 . _ -"),
    scope: z.enum(SCOPES),
    /** SHA-256 of the secret: the file never holds a secret the API accepts. */
    sha256: hex64,
    createdAt: instant,
    origins: z
      .array(z.string().refine(isOrigin, "must be a URL origin like https://a.example or http://localhost:8080"))
      .optional(),
    /** Ingest keys: events per second. Query keys: requests per second. */
    rate: z.number().int().positive().optional(),
    /** Query keys only: the ads it may read, as patterns (`*` any run of characters); none: every ad. */
    ads: z
      .array(z.string().regex(AD_PATTERN, "must be ad id characters (A-Z a-z 0-9 . _ : -) and * only"))
      .min(1)
      .optional(),
    /** Ingest keys only: where GET /click may send people (hosts, or *.host for subdomains). */
    clickDomains: z
      .array(z.string().regex(CLICK_DOMAIN, "must be a host name like shop.example, or *.shop.example"))
      .min(1)
      .optional(),
    /** HMAC key for signed pixel and click URLs; the API needs it in the clear to verify them. */
    signingSecret: hex64.optional(),
    /** Ingest keys only: for browsers; a request without browser signals is labelled non_browser traffic. */
    browser: z.literal(true).optional(),
    revokedAt: instant.optional(),
  })
  .superRefine((key, ctx) => {
    const only = (
      scope: Scope,
      fields: readonly ("origins" | "signingSecret" | "browser" | "ads" | "clickDomains")[],
    ) => {
      if (key.scope === scope) return;
      for (const field of fields) {
        if (key[field] !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: [field],
            message: `only ${scope === "ingest" ? "an" : "a"} ${scope} key can have ${field}`,
          });
        }
      }
    };
    only("ingest", ["origins", "signingSecret", "browser", "clickDomains"]);
    only("query", ["ads"]);
  });

const fileSchema = z.strictObject({ version: z.literal(1), keys: z.array(keySchema) }).superRefine((file, ctx) => {
  const names = new Map<string, number>();
  const hashes = new Map<string, number>();
  file.keys.forEach((key, i) => {
    const sameName = names.get(key.name);
    if (sameName !== undefined) {
      ctx.addIssue({ code: "custom", path: ["keys", i, "name"], message: `same name as keys.${sameName}` });
    }
    // One secret under two keys would make its scope ambiguous.
    const sameHash = hashes.get(key.sha256);
    if (sameHash !== undefined) {
      ctx.addIssue({ code: "custom", path: ["keys", i, "sha256"], message: `same secret as keys.${sameHash}` });
    }
    names.set(key.name, i);
    hashes.set(key.sha256, i);
  });
});

export type KeysFile = z.infer<typeof fileSchema>;
export type KeyRecord = KeysFile["keys"][number];

function check(path: string, value: unknown): KeysFile {
  const parsed = fileSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message));
  throw new KeysFileError(`keys file ${path}: ${problems.join("; ")}`, "invalid");
}

/**
 * Reads and checks the keys file. A missing file is an empty one (a fresh machine has no keys, so nothing
 * authenticates), unless `allowMissing` is false: then it is an error too.
 */
export function readKeysFile(path: string, { allowMissing = true } = {}): KeysFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && allowMissing) return { version: 1, keys: [] };
    if (code === "ENOENT") throw new KeysFileError(`keys file ${path}: not found`, "not_found");
    throw new KeysFileError(`keys file ${path}: cannot read: ${(error as Error).message}`, "unreadable");
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new KeysFileError(`keys file ${path}: not JSON: ${(error as Error).message}`, "invalid");
  }
  return check(path, json);
}

/**
 * Checks `file`, then replaces the keys file atomically: a reader (the API's watcher) sees the old file or
 * the new one, never a part. Mode 0600: the file holds the signing secrets.
 */
export function writeKeysFile(path: string, file: KeysFile): void {
  const text = `${JSON.stringify(check(path, file), null, 2)}\n`;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    mkdirSync(dir, { recursive: true });
    const fd = openSync(temp, "wx", 0o600);
    try {
      fchmodSync(fd, 0o600); // whatever the umask
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    // The rename itself is durable only once the directory is synced.
    const dirFd = openSync(dir, "r");
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch (error) {
    rmSync(temp, { force: true });
    throw new KeysFileError(`keys file ${path}: cannot write: ${(error as Error).message}`, "unreadable");
  }
}

/**
 * Reads the keys file, applies `edit` and writes the result, holding a lock on the file all along, so that two
 * edits at once (two `npm run keys`) both land: without it, each would write its own change over the file both
 * read. The lock is a directory beside the file (proper-lockfile), refreshed while held; one left by a process
 * that died is taken over once it is 10 s old.
 */
export async function editKeysFile<T>(
  path: string,
  edit: (file: KeysFile) => { file: KeysFile; result: T } | Promise<{ file: KeysFile; result: T }>,
): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  let release: () => Promise<void>;
  try {
    release = await lock(path, {
      realpath: false,
      stale: 10_000,
      retries: { retries: 100, minTimeout: 20, maxTimeout: 200 },
    });
  } catch (error) {
    throw new KeysFileError(`keys file ${path}: cannot lock it for an edit: ${(error as Error).message}`, "unreadable");
  }
  try {
    const { file, result } = await edit(readKeysFile(path));
    writeKeysFile(path, file);
    return result;
  } finally {
    await release();
  }
}

/** A new API key secret; the prefix lets secret scanners and people recognise one and its scope. */
export function newSecret(scope: Scope): string {
  return `${scope === "ingest" ? INGEST_KEY_PREFIX : QUERY_KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
}

/** 32 random bytes, hex: the HMAC key of a signed ingest key. */
export function newSigningSecret(): string {
  return randomBytes(32).toString("hex");
}

export function hashSecret(secret: string): string {
  return hash("sha256", secret);
}
