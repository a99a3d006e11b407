import { type WatchedFile, watchFile } from "../watched-file.ts";
import { Keyring } from "./keyring.ts";
import { KeysFileError, readKeysFile } from "./keys-file.ts";

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
  options: { intervalMs?: number; onReload?: (keyring: Keyring) => void; onError: (error: KeysFileError) => void },
): WatchedFile<Keyring> {
  return watchFile(path, { start: startingKeys, reload: loadKeys, ...options });
}
