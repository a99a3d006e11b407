import type { TestProject } from "vitest/node";
import { type StackEnv, startStack } from "../stack/stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stackEnv: StackEnv;
  }
}

/** One test stack (real Kafka, Valkey, ClickHouse) for the whole run; a failure to start fails the run. */
export default async function setup(project: TestProject) {
  const started = Date.now();
  const stack = await startStack("test");
  console.log(`[test] engines up in ${((Date.now() - started) / 1000).toFixed(1)}s: ${JSON.stringify(stack.env)}`);
  Object.assign(process.env, stack.env);
  project.provide("stackEnv", { ...stack.env });
  return async () => {
    const stopping = Date.now();
    await stack.stop();
    console.log(`[test] engines stopped in ${((Date.now() - stopping) / 1000).toFixed(1)}s`);
  };
}
