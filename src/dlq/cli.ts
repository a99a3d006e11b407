import { loadConfig } from "../config.ts";
import { CommandError, parseCommand, USAGE } from "./args.ts";
import { runDlq } from "./commands.ts";

/**
 * Composition root of `npm run dlq`: lists, shows or replays the dead letters of KAFKA_DLQ_TOPIC. Exit codes: 0
 * done, 1 Kafka or the topic failed it, 2 a wrong command line (the message says what, then the usage).
 */
try {
  const parsed = parseCommand(process.argv.slice(2), Date.now());
  if (parsed.command === "help") console.log(USAGE);
  else {
    const { command, ...filters } = parsed;
    await runDlq(command, filters, loadConfig(process.env), {
      line: (text) => console.log(text),
      progress: (text) => console.error(text),
    });
  }
} catch (error) {
  if (error instanceof CommandError) {
    console.error(`dlq: ${error.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    console.error(`dlq: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
