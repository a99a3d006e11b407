import { resolve } from "node:path";
import { DEFAULT_KEYS_FILE } from "../config.ts";
import { type Command, CommandError, parseCommand, USAGE } from "./cli-args.ts";
import {
  editKeysFile,
  hashSecret,
  type KeyRecord,
  KeysFileError,
  newSecret,
  newSigningSecret,
  readKeysFile,
} from "./keys-file.ts";

/**
 * Composition root of `npm run keys`: creates, lists and revokes the API's keys in the keys file. Each edit holds
 * the file's lock from its read to its write, so two at once both land.
 */
const path = resolve(process.env.API_KEYS_FILE || DEFAULT_KEYS_FILE);

async function create({
  scope,
  name,
  origins,
  rate,
  signed,
  browser,
  ads,
  clickDomains,
}: Extract<Command, { command: "create" }>) {
  const secret = newSecret(scope);
  const key: KeyRecord = { name, scope, sha256: hashSecret(secret), createdAt: new Date().toISOString() };
  if (origins.length > 0) key.origins = origins;
  if (rate !== undefined) key.rate = rate;
  if (signed) key.signingSecret = newSigningSecret();
  if (browser) key.browser = true;
  if (ads.length > 0) key.ads = ads;
  if (clickDomains.length > 0) key.clickDomains = clickDomains;
  await editKeysFile(path, (file) => {
    if (file.keys.some((k) => k.name === name)) {
      throw new CommandError(`a key named "${name}" already exists in ${path}`);
    }
    return { file: { ...file, keys: [...file.keys, key] }, result: undefined };
  });

  console.log(`created ${scope} key "${name}" in ${path}`);
  if (scope === "ingest") {
    console.log(`  origins: ${origins.length > 0 ? origins.join(", ") : "any"}`);
    console.log(`  rate:    ${rate === undefined ? "no limit" : `${rate} events/s`}`);
    console.log(`  signed:  ${signed ? "yes" : "no"}`);
    console.log(`  browser: ${browser ? "yes: requests without browser signals count as invalid traffic" : "no"}`);
    console.log(
      `  clicks:  ${clickDomains.length > 0 ? `to ${clickDomains.join(", ")}` : signed ? "to signed destinations" : "to CLICK_DOMAINS only"}`,
    );
  } else {
    console.log(`  ads:     ${ads.length > 0 ? ads.join(", ") : "every ad"}`);
    console.log(`  rate:    ${rate === undefined ? "the API's default (QUERY_RATE_PER_KEY)" : `${rate} requests/s`}`);
  }
  if (key.signingSecret) {
    console.log(
      "the ad server signs this key's pixel and click URLs with its signing secret (kept in the keys file too):",
    );
    console.log(`signing secret: ${key.signingSecret}`);
  }
  console.log("the key's secret, on the next line, is shown once (the file keeps only its SHA-256):");
  console.log(secret);
}

function list(): void {
  const { keys } = readKeysFile(path);
  if (keys.length === 0) {
    console.log(`no keys in ${path}`);
    return;
  }
  const rows = keys.map((k) => [
    k.name,
    k.scope,
    k.createdAt,
    k.origins?.join(",") ?? (k.scope === "ingest" ? "any" : "-"),
    k.ads?.join(",") ?? (k.scope === "query" ? "all" : "-"),
    k.rate === undefined ? "-" : String(k.rate),
    k.signingSecret ? "yes" : "no",
    k.browser ? "yes" : k.scope === "ingest" ? "no" : "-",
    k.clickDomains?.join(",") ?? "-",
    k.revokedAt ? `revoked ${k.revokedAt}` : "active",
  ]);
  const table = [
    ["NAME", "SCOPE", "CREATED", "ORIGINS", "ADS", "RATE", "SIGNED", "BROWSER", "CLICKS", "STATUS"],
    ...rows,
  ];
  const widths = table[0]?.map((_, column) => Math.max(...table.map((row) => row[column]?.length ?? 0))) ?? [];
  const line = (row: string[]) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ");
  for (const row of table) console.log(line(row).trimEnd());
}

async function revoke(name: string) {
  await editKeysFile(path, (file) => {
    const key = file.keys.find((k) => k.name === name);
    if (!key) throw new CommandError(`no key named "${name}" in ${path}`);
    if (key.revokedAt) throw new CommandError(`key "${name}" was already revoked at ${key.revokedAt}`);
    const revokedAt = new Date().toISOString();
    return { file: { ...file, keys: file.keys.map((k) => (k === key ? { ...k, revokedAt } : k)) }, result: undefined };
  });
  console.log(`revoked key "${name}" in ${path}`);
}

try {
  const command = parseCommand(process.argv.slice(2));
  if (command.command === "help") console.log(USAGE);
  else if (command.command === "create") await create(command);
  else if (command.command === "list") list();
  else await revoke(command.name);
} catch (error) {
  if (!(error instanceof CommandError || error instanceof KeysFileError)) throw error;
  console.error(`keys: ${error.message}`);
  if (error instanceof CommandError && error.showUsage) console.error(`\n${USAGE}`);
  process.exitCode = error instanceof CommandError ? 2 : 1;
}
