import { readFileSync, statSync } from "node:fs";
import { IpRanges, IpRangesError } from "./ip-ranges.ts";

export interface IpRangesWatcher {
  current(): IpRanges;
  close(): void;
}

/** What tells a changed file apart, an atomic rename-over included (new inode); or why there is none. */
function fingerprint(path: string): string {
  try {
    const stat = statSync(path);
    return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? "error";
  }
}

/** The ranges of the file at `path`; throws IpRangesError if it cannot be read or a line is not a range. */
export function loadIpRanges(path: string): IpRanges {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new IpRangesError(`IP ranges file ${path}: cannot read: ${(error as Error).message}`);
  }
  return IpRanges.parse(text, path);
}

/**
 * Loads the IP ranges file now (throws IpRangesError if it cannot), then polls it and reloads it when it changes,
 * as the keys file is watched (src/auth/keys-watcher.ts). A version that cannot be read or holds a line that is not
 * a range is reported to `onError` once and the last good ranges stay: a broken edit must not drop the list. An
 * emptied file is taken: no range is listed any more.
 */
export function watchIpRanges(
  path: string,
  {
    intervalMs = 1000,
    onReload,
    onError,
  }: { intervalMs?: number; onReload?: (ranges: IpRanges) => void; onError: (error: IpRangesError) => void },
): IpRangesWatcher {
  let seen = fingerprint(path);
  let ranges = loadIpRanges(path);
  const timer = setInterval(() => {
    const now = fingerprint(path);
    if (now === seen) return;
    // Taken before reading: a write during the read changes it again and is read at the next poll.
    seen = now;
    try {
      ranges = loadIpRanges(path);
    } catch (error) {
      onError(error as IpRangesError); // loadIpRanges throws nothing else
      return;
    }
    onReload?.(ranges);
  }, intervalMs);
  timer.unref();
  return { current: () => ranges, close: () => clearInterval(timer) };
}
