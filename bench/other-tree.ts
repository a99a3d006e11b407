import { spawnLogged } from "../stack/process.ts";

/**
 * Runs `script` (an ES module's body) with this Node in the checkout `root`, where its relative imports resolve to
 * that checkout's code (its provisioning, its migrations); throws unless it exits 0.
 */
export async function runInTree(root: string, script: string, env: NodeJS.ProcessEnv, logFile: string): Promise<void> {
  const run = spawnLogged(process.execPath, ["--input-type=module", "-e", script], { cwd: root, env, logFile });
  const code = await run.exited;
  if (code !== 0) throw new Error(`${script} in ${root} exited ${code} (log: ${logFile})`);
}
