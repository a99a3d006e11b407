import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import type { WatchedFile } from "../../src/watched-file.ts";
import { useTempDir } from "./temp-dir.ts";

type Watch<T, E> = (
  path: string,
  options: { intervalMs: number; onReload: (value: T) => void; onError: (error: E) => void },
) => WatchedFile<T>;

/**
 * A watched file under test, fresh for each test: `path` (named `fileName`) in a directory of its own, `watch()`
 * to start the watcher polling every 20 ms, and what it reported (`reloads`, `errors`). The watcher is closed and
 * the directory removed after the test.
 */
export function useWatchedFile<T, E>(prefix: string, fileName: string, watch: Watch<T, E>) {
  const tempDir = useTempDir(prefix);
  const state = {
    dir: "",
    path: "",
    reloads: [] as T[],
    errors: [] as E[],
    watcher: undefined as WatchedFile<T> | undefined,
    watch(): WatchedFile<T> {
      state.watcher = watch(state.path, {
        intervalMs: 20,
        onReload: (value) => state.reloads.push(value),
        onError: (error) => state.errors.push(error),
      });
      return state.watcher;
    },
  };
  beforeEach(() => {
    state.dir = tempDir();
    state.path = join(state.dir, fileName);
    state.reloads = [];
    state.errors = [];
    state.watcher = undefined;
  });
  afterEach(() => state.watcher?.close());
  return state;
}
