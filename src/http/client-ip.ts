/**
 * The id a client's rate limit is kept under: its IPv4 address as it is, or the /64 network of its IPv6
 * address. An IPv6 subscriber gets a whole /64 (or more) from its provider, so a limit per address would be a
 * limit per 2^64 addresses. An IPv4-mapped address (`::ffff:192.0.2.1`, how a dual-stack socket shows an IPv4
 * peer) is its IPv4 address, so one client is one bucket whichever way it connects.
 */
export function clientBucketId(ip: string): string {
  if (!ip.includes(":")) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6);
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a dotted IPv4 tail read, a zone dropped). */
function ipv6Groups(address: string): number[] | undefined {
  const zone = address.indexOf("%");
  let text = (zone === -1 ? address : address.slice(0, zone)).toLowerCase();
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    const octets = text.slice(lastColon + 1).split(".");
    const bytes = octets.map((o) => (/^\d{1,3}$/.test(o) ? Number(o) : 256));
    if (bytes.length !== 4 || bytes.some((b) => b > 255)) return undefined;
    const [a = 0, b = 0, c = 0, d = 0] = bytes;
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, text.endsWith("::", lastColon + 1) ? lastColon + 1 : lastColon);
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined) => (part ? part.split(":") : []);
  const front = parse(halves[0]);
  const back = parse(halves[1]);
  const missing = 8 - tail.length - front.length - back.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const hex = [...front, ...back];
  if (hex.some((h) => !/^[0-9a-f]{1,4}$/.test(h))) return undefined;
  const numbers = (part: string[]) => part.map((h) => Number.parseInt(h, 16));
  return [
    ...numbers(front),
    ...new Array<number>(halves.length === 1 ? 0 : missing).fill(0),
    ...numbers(back),
    ...tail,
  ];
}
