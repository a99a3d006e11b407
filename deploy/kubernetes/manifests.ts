import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import type { Kustomization, Manifests } from "./rules.ts";
import type { KubeObject } from "./validate.ts";

/**
 * The manifests of `dir` as kubectl reads them: each YAML file's documents, and its kustomization.yaml. YAML 1.1,
 * as Kubernetes parses it (where 0440 is octal); a file YAML cannot parse throws, naming it.
 */
export function readManifests(dir: string): Manifests {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .sort();
  const objects = files.flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), "utf8"), { version: "1.1" }).map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      return doc.toJS() as KubeObject;
    }),
  );
  const kustomization = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8")) as Kustomization;
  return { files, objects, kustomization };
}
