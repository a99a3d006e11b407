import { statSync } from "node:fs";

/** A file's contents as last loaded successfully, kept up to date by polling. */
export interface WatchedFile<T> {
  current(): T;
  close(): void;
}

/**
 * What tells a changed file apart, an atomic rename-over included (new inode), a chmod too (ctime: a file made
 * readable again); or why there is none (ENOENT, EACCES, ...).
 */
export function fingerprint(path: string): string {
  try {
    const stat = statSync(path);
    return `${stat.ino}:${stat.size}:${stat.mtimeMs}:${stat.ctimeMs}`;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? "error";
  }
}

export interface WatchOptions<T, E extends Error> {
  /** Loads the file at start; what it throws is the caller's to handle (src/usable-file.ts waits for a good one). */
  start: (path: string) => T;
  /** Loads a changed version; throws an E for a version that must not replace the last good one. */
  reload: (path: string) => T;
  intervalMs?: number;
  onReload?: (value: T) => void;
  /** A version `reload` refused, reported once per change; the last good value stays. */
  onError: (error: E) => void;
}

/**
 * Loads `path` now, then polls it every `intervalMs` and reloads it when it changes. A version `reload` refuses is
 * reported and the last good value stays: a broken edit of a keys or ranges file must never turn its checks off.
 */
export function watchFile<T, E extends Error>(
  path: string,
  { start, reload, intervalMs = 1000, onReload, onError }: WatchOptions<T, E>,
): WatchedFile<T> {
  let seen = fingerprint(path);
  let value = start(path);
  const timer = setInterval(() => {
    const now = fingerprint(path);
    if (now === seen) return;
    // Taken before reading: a write during the read changes it again and is read at the next poll.
    seen = now;
    try {
      value = reload(path);
    } catch (error) {
      onError(error as E); // `reload` throws only E
      return;
    }
    onReload?.(value);
  }, intervalMs);
  timer.unref();
  return { current: () => value, close: () => clearInterval(timer) };
}
