import type { Config } from "../src/config.ts";
import { IpRangesError, unusableRangesMessage } from "../src/traffic/ip-ranges.ts";
import { loadIpRanges } from "../src/traffic/ip-ranges-watcher.ts";
import { keysProblem, type LaunchAuth } from "./auth-mode.ts";

/**
 * Why the API would wait instead of serving (src/api/main.ts), and how to fix it: a keys file it cannot use with
 * AUTH=required, or an IP ranges file it cannot read; undefined when neither.
 */
export function unusableFile(keys: LaunchAuth, config: Config): string | undefined {
  const keysFile = keys.auth === "required" ? keysProblem(keys.keysFile) : undefined;
  if (keysFile) return `AUTH=required, but ${keysFile}: fix it (npm run keys -- create ...), or set AUTH=off`;
  if (config.IVT_CLASSIFICATION === "off" || !config.IVT_IP_RANGES_FILE) return undefined;
  try {
    loadIpRanges(config.IVT_IP_RANGES_FILE);
    return undefined;
  } catch (error) {
    if (!(error instanceof IpRangesError)) throw error;
    return unusableRangesMessage(error);
  }
}
