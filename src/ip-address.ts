import ipaddr from "ipaddr.js";

/**
 * A parsed client address, in the forms the traffic rules compare: an IPv4 address as an unsigned 32-bit number,
 * an IPv6 address as 32 lowercase hex digits (fixed width, so text order is numeric order). An IPv4-mapped IPv6
 * address (`::ffff:192.0.2.1`, how a dual-stack socket shows an IPv4 peer) is its IPv4 address.
 */
export type Address = { version: 4; value: number; text?: string } | { version: 6; hex: string };

/** Whether `text` is an IPv4 address in dotted decimal or an IPv6 address: what an `ip` field may hold. */
export function isIpAddress(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || ipaddr.IPv6.isValid(text);
}

/** Dotted-decimal IPv4 without allocating (every browser request has an address to parse); undefined if not one. */
function ipv4Value(text: string): number | undefined {
  let value = 0;
  let octet = -1;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x2e) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      dots++;
      octet = -1;
      digits = 0;
    } else if (code >= 0x30 && code <= 0x39) {
      // No leading zeros: `010` is octal to some parsers and decimal to others.
      if (digits === 1 && octet === 0) return undefined;
      octet = (octet === -1 ? 0 : octet * 10) + (code - 0x30);
      if (++digits > 3 || octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return value * 256 + octet;
}

function hexOf(parts: readonly number[]): string {
  let hex = "";
  for (const part of parts) hex += part.toString(16).padStart(4, "0");
  return hex;
}

/** The address of `text`, or undefined if it is none. */
export function parseAddress(text: string): Address | undefined {
  const v4 = ipv4Value(text);
  // Its text is kept: its prefix and key are cut from it rather than written anew.
  if (v4 !== undefined) return { version: 4, value: v4, text };
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  const v6 = ipaddr.IPv6.parse(text);
  if (v6.isIPv4MappedAddress()) {
    const [a = 0, b = 0, c = 0, d = 0] = v6.toIPv4Address().octets;
    return { version: 4, value: ((a * 256 + b) * 256 + c) * 256 + d };
  }
  return { version: 6, hex: hexOf(v6.parts) };
}

function dotted(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

/** The first `groups` 16-bit groups of an IPv6 address, as an address text with `::` after them. */
function ipv6Network(hex: string, groups: number): string {
  const parts: string[] = [];
  for (let i = 0; i < groups; i++) parts.push(Number.parseInt(hex.slice(i * 4, i * 4 + 4), 16).toString(16));
  return `${parts.join(":")}::`;
}

/**
 * What is stored of the viewer's address: its network, never the address itself. IPv4 keeps its first 24 bits
 * (`203.0.113.0/24`), IPv6 its first 48 (`2001:db8:1::/48`): the truncation Google Analytics applied when it
 * anonymised IPs, enough to tell a data center or a network from another, not a subscriber from its neighbours.
 */
export function networkPrefix(address: Address): string {
  if (address.version === 4) {
    const { text } = address;
    return text === undefined
      ? `${dotted(address.value & 0xffffff00)}/24`
      : `${text.slice(0, text.lastIndexOf("."))}.0/24`;
  }
  return `${ipv6Network(address.hex, 3)}/48`;
}

/**
 * The key a client's activity is counted under: its IPv4 address, or the /64 of its IPv6 address (a subscriber
 * gets a whole /64 from its provider, so counting per address would count per 2^64 addresses), as
 * src/http/client-ip.ts buckets rate limits.
 */
export function clientKey(address: Address): string {
  if (address.version === 4) return address.text ?? dotted(address.value);
  return `${ipv6Network(address.hex, 4)}/64`;
}
