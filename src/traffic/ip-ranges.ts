import ipaddr from "ipaddr.js";
import type { Address } from "../ip-address.ts";

/** An IP ranges file that cannot be used: the message names the file and each bad line (up to a few). */
export class IpRangesError extends Error {
  override name = "IpRangesError";
}

/** What an operator is told of an IP ranges file the API cannot use at start, and how to fix it. */
export function unusableRangesMessage(error: IpRangesError): string {
  return `IVT_IP_RANGES_FILE: ${error.message}: fix the file, or unset IVT_IP_RANGES_FILE`;
}

/** Sorted, non-overlapping ranges of one address family, for binary search. */
interface Ranges<T> {
  starts: T[];
  ends: T[];
}

function merged<T>(ranges: [T, T][], next: (value: T) => T): Ranges<T> {
  ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const starts: T[] = [];
  const ends: T[] = [];
  for (const [start, end] of ranges) {
    const last = ends.length - 1;
    // Overlapping or adjacent: one range.
    if (last >= 0 && start <= next(ends[last] as T)) {
      if (end > (ends[last] as T)) ends[last] = end;
    } else {
      starts.push(start);
      ends.push(end);
    }
  }
  return { starts, ends };
}

function within<T>({ starts, ends }: Ranges<T>, value: T): boolean {
  let low = 0;
  let high = starts.length - 1;
  // The last range starting at or before value.
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if ((starts[middle] as T) <= value) low = middle + 1;
    else high = middle - 1;
  }
  return high >= 0 && value <= (ends[high] as T);
}

const V6_BITS = 128n;
const hex32 = (value: bigint) => value.toString(16).padStart(32, "0");
/** The next IPv6 value in hex (adjacent ranges merge); the last address stays itself. */
const nextV6 = (hex: string) => (hex === "f".repeat(32) ? hex : hex32(BigInt(`0x${hex}`) + 1n));

/**
 * The IP ranges an operator lists as invalid traffic (data centers, known abusers): one IPv4 or IPv6 address or
 * CIDR range per line, `#` starts a comment, blank lines are ignored. Lookups are a binary search over the merged
 * ranges of the address's family: no allocation, whatever the list's size.
 */
export class IpRanges {
  readonly #v4: Ranges<number>;
  readonly #v6: Ranges<string>;
  /** How many ranges the file listed (before merging), for the logs. */
  readonly listed: number;

  constructor(v4: [number, number][], v6: [string, string][]) {
    this.listed = v4.length + v6.length;
    this.#v4 = merged(v4, (n) => n + 1);
    this.#v6 = merged(v6, nextV6);
  }

  static readonly EMPTY = new IpRanges([], []);

  get empty(): boolean {
    return this.listed === 0;
  }

  has(address: Address): boolean {
    return address.version === 4 ? within(this.#v4, address.value) : within(this.#v6, address.hex);
  }

  /** Parses a ranges file's text; throws IpRangesError naming `source` and the lines it cannot read. */
  static parse(text: string, source: string): IpRanges {
    const v4: [number, number][] = [];
    const v6: [string, string][] = [];
    const bad: string[] = [];
    text.split("\n").forEach((raw, index) => {
      const line = raw.replace(/#.*/, "").trim();
      if (line === "") return;
      const range = parseRange(line);
      if (range === undefined) bad.push(`line ${index + 1}: "${line.slice(0, 60)}"`);
      else if (range.version === 4) v4.push([range.start, range.end]);
      else v6.push([range.start, range.end]);
    });
    if (bad.length > 0) {
      const shown = bad.slice(0, 5).join("; ");
      const more = bad.length > 5 ? ` and ${bad.length - 5} more` : "";
      throw new IpRangesError(
        `IP ranges file ${source}: not an IP address or CIDR range: ${shown}${more} (one per line, # for comments)`,
      );
    }
    return new IpRanges(v4, v6);
  }
}

type Range = { version: 4; start: number; end: number } | { version: 6; start: string; end: string };

function parseRange(text: string): Range | undefined {
  let address: ipaddr.IPv4 | ipaddr.IPv6;
  let bits: number;
  try {
    if (text.includes("/")) {
      if (!ipaddr.isValidCIDR(text)) return undefined;
      [address, bits] = ipaddr.parseCIDR(text);
    } else {
      if (!ipaddr.IPv4.isValidFourPartDecimal(text) && !ipaddr.IPv6.isValid(text)) return undefined;
      address = ipaddr.parse(text);
      bits = address.kind() === "ipv4" ? 32 : 128;
    }
  } catch {
    return undefined;
  }
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    address = (address as ipaddr.IPv6).toIPv4Address();
    bits -= 96;
  }
  if (address.kind() === "ipv4") {
    const [a = 0, b = 0, c = 0, d = 0] = (address as ipaddr.IPv4).octets;
    const value = ((a * 256 + b) * 256 + c) * 256 + d;
    const size = 2 ** (32 - bits);
    const start = Math.floor(value / size) * size;
    return { version: 4, start, end: start + size - 1 };
  }
  let value = 0n;
  for (const part of (address as ipaddr.IPv6).parts) value = (value << 16n) | BigInt(part);
  const hostBits = V6_BITS - BigInt(bits);
  const hostMask = (1n << hostBits) - 1n;
  const start = value & ~hostMask;
  return { version: 6, start: hex32(start), end: hex32(start | hostMask) };
}
