import type { preValidationHookHandler } from "fastify";

/**
 * What ad servers and video players add to a tracking URL so that no cache answers it: parameters the pixel and
 * /click ignore, where any other unknown parameter is refused (a sender's typo must not be lost). The rule:
 *
 * 1. by name, whatever the value, in any letter case: `cb`, `ord` (DoubleClick), `rnd`, `cachebuster`,
 *    `cachebusting`, `_` (jQuery);
 * 2. by value, under any other name: the VAST macros `[CACHEBUSTING]` and `[TIMESTAMP]`, left as they are or as
 *    they are substituted: CACHEBUSTING by exactly 8 digits, TIMESTAMP by an ISO 8601 time with its offset
 *    (`2026-12-01T10:30:15.250Z`, `2016-01-17T8:15:07.127-05`). Not under a name that is one of the route's own
 *    parameters in another spelling (`userid`, `AD_ID`: letter case, `_` and `-` aside), so the typo of a real
 *    parameter is refused even when its value has such a shape. A repeated parameter is ignored only if every
 *    value is.
 */
export const CACHEBUSTER_NAMES: ReadonlySet<string> = new Set(["cb", "ord", "rnd", "cachebuster", "cachebusting", "_"]);
const MACRO = /^\[(?:CACHEBUSTING|TIMESTAMP)\]$/;
const CACHEBUSTING = /^\d{8}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{1,2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}(?::?\d{2})?)$/;

/** A parameter name as letters and digits only, lower case: how a typo of a real one is recognised. */
function spelling(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, "");
}

function cachebusting(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0 && value.every(cachebusting);
  return typeof value === "string" && (MACRO.test(value) || CACHEBUSTING.test(value) || TIMESTAMP.test(value));
}

/** Whether the route ignores `name=value`, given the spellings of its own parameters. */
export function isCachebuster(name: string, value: unknown, own: ReadonlySet<string>): boolean {
  if (CACHEBUSTER_NAMES.has(name.toLowerCase())) return true;
  return !own.has(spelling(name)) && cachebusting(value);
}

/**
 * A preValidation hook that drops the cachebusters from the parsed query string before the route's strict schema
 * sees it. `ownNames`: the route's parameters.
 */
export function ignoreCachebusters(ownNames: readonly string[]): preValidationHookHandler {
  const own = new Set(ownNames.map(spelling));
  return (request, _reply, done) => {
    const query = request.query as Record<string, unknown>;
    for (const name of Object.keys(query)) {
      if (isCachebuster(name, query[name], own)) delete query[name];
    }
    done();
  };
}
