import type { TestProject } from "vitest/node";
import { PortsInUseError } from "../stack/ports.ts";
import { type StackEnv, startStack } from "../stack/stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stackEnv: StackEnv & { API_METRICS_PORT: string; WORKER_METRICS_PORT: string; QUERY_METRICS_PORT: string };
  }
}

/** One test stack (real Kafka, Valkey, ClickHouse) for the whole run; a failure to start fails the run. */
export default async function setup(project: TestProject) {
  const started = Date.now();
  const stack = await startStack("test").catch((error: unknown) => {
    if (!(error instanceof PortsInUseError)) throw error;
    // The one line says what to do; a stack trace from the test runner would only bury it.
    console.error(`[test] ${error.message}`);
    process.exit(1);
  });
  console.log(`[test] engines up in ${((Date.now() - started) / 1000).toFixed(1)}s: ${JSON.stringify(stack.env)}`);
  // Every process a test starts picks free metrics ports: tests run beside `npm start`, which has the fixed ones.
  const env = { ...stack.env, API_METRICS_PORT: "0", WORKER_METRICS_PORT: "0", QUERY_METRICS_PORT: "0" };
  Object.assign(process.env, env);
  project.provide("stackEnv", env);
  return async () => {
    const stopping = Date.now();
    await stack.stop();
    console.log(`[test] engines stopped in ${((Date.now() - stopping) / 1000).toFixed(1)}s`);
  };
}
