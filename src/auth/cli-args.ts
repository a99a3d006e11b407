import { parseArgs } from "node:util";
import { CLICK_DOMAIN, isOrigin } from "../config.ts";
import { AD_PATTERN, KEY_NAME, SCOPES, type Scope } from "./keys-file.ts";

/** The command line is wrong (exit code 2); `showUsage` when the usage text is the answer. */
export class CommandError extends Error {
  override name = "CommandError";
  readonly showUsage: boolean;
  constructor(message: string, { showUsage = false } = {}) {
    super(message);
    this.showUsage = showUsage;
  }
}

export const USAGE = `usage: npm run keys -- <command>

  create --scope ingest|query --name NAME [--origin ORIGIN]... [--rate N] [--signed] [--browser] [--ads PATTERN]...
         [--click-domain DOMAIN]...
        adds a key and prints its secret once, alone on the last line
        --origin  a browser origin allowed to send with it (repeatable; default: any)
        --rate    ingest keys: events per second it may send (default: no limit);
                  query keys: requests per second (default: QUERY_RATE_PER_KEY of the API)
        --signed  its pixel and click URLs must be signed: also prints the signing secret for the ad server
        --browser for pages only: what a request without browser signals (Origin or Sec-Fetch-*, a
                  browser's user agent) sends with it is counted as invalid traffic (non_browser)
        --click-domain  where GET /click may send people with it: a host (shop.example), or *.shop.example
                  for its subdomains (repeatable or comma-separated; default: CLICK_DOMAINS of the API only,
                  and for a signed key any destination it signs)
        --ads     the ads it may read, * for any characters, e.g. 'acme-*' (repeatable or comma-separated;
                  default: every ad); such a key cannot read /stats/pipeline or /metrics
        (--origin, --signed, --browser and --click-domain are for ingest keys only, --ads for query keys only)
  list          the keys and their status, never their secrets
  revoke NAME   stops accepting a key

The keys file is API_KEYS_FILE (default .data/dev/keys.json).`;

export type Command =
  | { command: "help" }
  | {
      command: "create";
      scope: Scope;
      name: string;
      origins: string[];
      rate: number | undefined;
      signed: boolean;
      browser: boolean;
      ads: string[];
      clickDomains: string[];
    }
  | { command: "list" }
  | { command: "revoke"; name: string };

const options = {
  scope: { type: "string" },
  name: { type: "string" },
  origin: { type: "string", multiple: true },
  rate: { type: "string" },
  signed: { type: "boolean" },
  browser: { type: "boolean" },
  ads: { type: "string", multiple: true },
  "click-domain": { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

interface Values {
  scope?: string;
  name?: string;
  origin?: string[];
  rate?: string;
  signed?: boolean;
  browser?: boolean;
  ads?: string[];
  "click-domain"?: string[];
  help?: boolean;
}

/** The command `argv` (the arguments after the script) asks for; throws CommandError naming what is wrong. */
export function parseCommand(argv: string[]): Command {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (error) {
    throw new CommandError((error as Error).message, { showUsage: true });
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: "help" };
  const [command, ...operands] = positionals;
  if (command === undefined) throw new CommandError("no command given", { showUsage: true });
  if (command === "create") return parseCreate(values, operands);
  if (command !== "list" && command !== "revoke") {
    throw new CommandError(`unknown command "${command}"`, { showUsage: true });
  }
  const option = Object.keys(values)[0];
  if (option !== undefined) throw new CommandError(`--${option} is only for create`, { showUsage: true });
  if (command === "list") {
    if (operands.length > 0) throw new CommandError("list takes no arguments", { showUsage: true });
    return { command: "list" };
  }
  const [name, ...extra] = operands;
  if (name === undefined || extra.length > 0) throw new CommandError("revoke takes one NAME", { showUsage: true });
  return { command: "revoke", name };
}

function parseCreate(values: Values, operands: string[]): Command {
  if (operands.length > 0) throw new CommandError(`create takes no arguments, got "${operands.join(" ")}"`);
  const { scope, name, origin: origins = [], rate, signed = false, browser = false } = values;
  const ads = (values.ads ?? []).flatMap((list) => list.split(",")).map((pattern) => pattern.trim());
  const clickDomains = (values["click-domain"] ?? [])
    .flatMap((list) => list.split(","))
    .map((domain) => domain.trim().toLowerCase());
  const known = SCOPES.find((s) => s === scope);
  if (known === undefined) {
    throw new CommandError(
      `--scope must be one of ${SCOPES.join(", ")}${scope === undefined ? "" : `, got "${scope}"`}`,
    );
  }
  if (name === undefined) throw new CommandError("--name is required");
  if (!KEY_NAME.test(name)) throw new CommandError(`--name "${name}": must be 1-64 characters of A-Z a-z 0-9 . _ -`);
  for (const origin of origins) {
    if (isOrigin(origin)) continue;
    const normal = URL.canParse(origin) ? new URL(origin).origin : "null";
    const hint = normal === "null" ? "" : `; did you mean "${normal}"?`;
    throw new CommandError(`--origin "${origin}": must be a URL origin like https://a.example${hint}`);
  }
  if (rate !== undefined && !(/^\d+$/.test(rate) && Number.isSafeInteger(Number(rate)) && Number(rate) > 0)) {
    const unit = known === "query" ? "requests" : "events";
    throw new CommandError(`--rate "${rate}": must be a positive whole number of ${unit} per second`);
  }
  for (const pattern of ads) {
    if (!AD_PATTERN.test(pattern)) {
      throw new CommandError(`--ads "${pattern}": must be ad id characters (A-Z a-z 0-9 . _ : -) and * only`);
    }
  }
  for (const domain of clickDomains) {
    if (!CLICK_DOMAIN.test(domain)) {
      throw new CommandError(
        `--click-domain "${domain}": must be a host name like shop.example, or *.shop.example for its subdomains`,
      );
    }
  }
  if (known === "query") {
    const misplaced = [
      origins.length > 0 && "--origin",
      signed && "--signed",
      browser && "--browser",
      clickDomains.length > 0 && "--click-domain",
    ];
    const first = misplaced.find(Boolean);
    if (first) throw new CommandError(`${first} is only for ingest keys (--scope ingest)`);
  } else if (ads.length > 0) {
    throw new CommandError("--ads is only for query keys (--scope query)");
  }
  return {
    command: "create",
    scope: known,
    name,
    origins: [...new Set(origins)],
    rate: rate === undefined ? undefined : Number(rate),
    signed,
    browser,
    ads: [...new Set(ads)],
    clickDomains: [...new Set(clickDomains)],
  };
}
