import { statSync } from "node:fs";
import { Keyring } from "./keyring.ts";
import { type KeysFileError, readKeysFile } from "./keys-file.ts";

export interface KeysWatcher {
  current(): Keyring;
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

/**
 * Loads the keys file now (throws KeysFileError if it is invalid or unreadable; missing is empty), then
 * polls it and reloads it when it changes. A version that does not load, a deleted file included, is
 * reported to `onError` once and the last good keyring stays: a broken edit must not turn auth off.
 */
export function watchKeys(
  path: string,
  {
    intervalMs = 1000,
    onReload,
    onError,
  }: { intervalMs?: number; onReload?: (keyring: Keyring) => void; onError: (error: KeysFileError) => void },
): KeysWatcher {
  let seen = fingerprint(path);
  let keyring = new Keyring(readKeysFile(path));

  const timer = setInterval(() => {
    const now = fingerprint(path);
    if (now === seen) return;
    // Taken before reading: a write during the read changes it again and is read at the next poll.
    seen = now;
    try {
      keyring = new Keyring(readKeysFile(path, { allowMissing: false }));
    } catch (error) {
      onError(error as KeysFileError); // readKeysFile throws nothing else
      return;
    }
    onReload?.(keyring);
  }, intervalMs);
  timer.unref();

  return {
    current: () => keyring,
    close: () => clearInterval(timer),
  };
}
