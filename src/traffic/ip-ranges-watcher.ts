import { readFileSync } from "node:fs";
import { type WatchedFile, watchFile } from "../watched-file.ts";
import { IpRanges, IpRangesError } from "./ip-ranges.ts";

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
  options: { intervalMs?: number; onReload?: (ranges: IpRanges) => void; onError: (error: IpRangesError) => void },
): WatchedFile<IpRanges> {
  return watchFile(path, { start: loadIpRanges, reload: loadIpRanges, ...options });
}
