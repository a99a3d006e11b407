import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The folders of src/ form layers: src/api composes the route folders, they use the domain folders, and nothing
 * imports back up. A folder is a node of the graph; so is each file at the top of src/ (config.ts, errors.ts, ...).
 *
 * TypeScript 7's compiler is native and has no JavaScript API (no `ts.preProcessFile`), so the imports are read from
 * the text: Biome formats every static `import`/`export ... from "..."` as one statement, and dynamic imports take a
 * string literal. Comments are removed first so that a path quoted in one is no import.
 */
const SRC = import.meta.dirname;
const IMPORT =
  /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** The relative specifiers a file imports, resolved to absolute paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  return [...text.matchAll(IMPORT)]
    .map((match) => match[1] ?? match[2] ?? match[3] ?? "")
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => resolve(dirname(file), specifier));
}

/** `api` for src/api/app.ts, `config.ts` for src/config.ts, undefined outside src/. */
function nodeOf(path: string): string | undefined {
  const inSrc = relative(SRC, path);
  if (inSrc.startsWith("..")) return undefined;
  return inSrc.split(sep)[0];
}

/** folder -> folder it imports -> one file-level import that makes the edge (for the failure message). */
function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(SRC)) {
    const from = nodeOf(file) as string;
    for (const target of importsOf(file)) {
      const to = nodeOf(target);
      if (to === undefined || to === from) continue;
      const edges = graph.get(from) ?? new Map<string, string>();
      if (!edges.has(to)) edges.set(to, `${relative(SRC, file)} imports ${relative(SRC, target)}`);
      graph.set(from, edges);
    }
  }
  return graph;
}

/** One cycle of the graph as its nodes (first = last), or undefined when it has none. */
function findCycle(graph: Map<string, Map<string, string>>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    const open = path.indexOf(node);
    if (open >= 0) return [...path.slice(open), node];
    if (done.has(node)) return undefined;
    path.push(node);
    for (const next of graph.get(node)?.keys() ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    done.add(node);
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

describe("the folders of src/", () => {
  const graph = folderGraph();

  it("reads the imports it checks (the composition root imports the route folders)", () => {
    expect([...(graph.get("api")?.keys() ?? [])]).toEqual(expect.arrayContaining(["ingest", "stats", "http"]));
  });

  it("import one another without a cycle", () => {
    const cycle = findCycle(graph);
    const hops = cycle?.slice(1).map((to, i) => graph.get(cycle[i] as string)?.get(to));
    expect(cycle && `${cycle.join(" -> ")}:\n  ${hops?.join("\n  ")}`).toBeUndefined();
  });

  it("finds a cycle when there is one", () => {
    const looped = new Map([
      ["a", new Map([["b", "a/x.ts imports b/y.ts"]])],
      ["b", new Map([["c", "b/y.ts imports c/z.ts"]])],
      ["c", new Map([["a", "c/z.ts imports a/x.ts"]])],
    ]);
    expect(findCycle(looped)).toEqual(["a", "b", "c", "a"]);
    expect(findCycle(new Map([["a", new Map([["b", ""]])]]))).toBeUndefined();
  });

  it("keep config.ts a leaf: it imports nothing of the project", () => {
    expect(importsOf(join(SRC, "config.ts")).map((path) => relative(SRC, path))).toEqual([]);
  });
});
