import { statSync } from "node:fs";
import { Keyring } from "./keyring.ts";
import { KeysFileError, readKeysFile } from "./keys-file.ts";

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
 * The keys of a file that exists, is valid and names at least one key (revoked ones count); throws KeysFileError
 * otherwise. A file naming no key is refused like a broken one: whether emptied by hand or never written, it can
 * only be a mistake while keys are required, and taking it would leave no key to check anything against.
 */
export function loadKeys(path: string): Keyring {
  const file = readKeysFile(path, { allowMissing: false });
  if (file.keys.length === 0) {
    throw new KeysFileError(`keys file ${path}: names no key ("keys": [])`, "no_keys");
  }
  return new Keyring(file);
}

/**
 * The keys to start with: loadKeys, and at least one of them active. An API that starts with none would refuse
 * every request; starting it is a mistake (every key revoked, or the wrong file) better said at once.
 */
export function startingKeys(path: string): Keyring {
  const keyring = loadKeys(path);
  if (keyring.activeCount === 0) throw new KeysFileError(`keys file ${path}: every key in it is revoked`, "no_keys");
  return keyring;
}

/**
 * Loads the keys file now (throws KeysFileError if startingKeys refuses it), then polls it and reloads it when it
 * changes. A version loadKeys refuses (deleted, unreadable, invalid, or naming no key) is reported to `onError`
 * once and the last good keyring stays: a broken edit must never turn keys off. A version whose keys are all
 * revoked is taken: every request is then refused.
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
  let keyring = startingKeys(path);

  const timer = setInterval(() => {
    const now = fingerprint(path);
    if (now === seen) return;
    // Taken before reading: a write during the read changes it again and is read at the next poll.
    seen = now;
    try {
      keyring = loadKeys(path);
    } catch (error) {
      onError(error as KeysFileError); // loadKeys throws nothing else
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
