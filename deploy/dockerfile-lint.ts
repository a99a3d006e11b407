import { DockerfileParser, type Instruction, type JSONInstruction } from "dockerfile-ast";
import { ValidationSeverity, type ValidatorSettings, validate } from "dockerfile-utils";

/** Every check dockerfile-utils can make, as an error: a warning left alone is a problem nobody reads. */
const STRICT: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

/** The base of every stage: the official Node 24 image, by an explicit tag (the Node the project runs on). */
const NODE_24 = /^node:24(\.\d+){0,2}(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/;
const ROOT_USERS = new Set(["root", "0"]);
const NPM_INSTALL = /\bnpm\s+(install|ci|i|clean-install)\b/;

/**
 * What is wrong with a Dockerfile, one line each (`line N: ...`), or nothing: dockerfile-utils' checks (syntax,
 * arguments, flags, ports, duplicated CMD/ENTRYPOINT, ...) and this project's rules for its image: Node 24 bases,
 * production dependencies only, a non-root user, and an exec-form entry so that SIGTERM reaches Node.
 */
export function lintDockerfile(text: string): string[] {
  const problems = validate(text, STRICT).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  const dockerfile = DockerfileParser.parse(text);
  const at = (instruction: Instruction) => `line ${instruction.getRange().start.line + 1}`;
  const stages = new Set<string>();

  for (const from of dockerfile.getFROMs()) {
    const image = from.getExpandedArguments()[0]?.getValue() ?? "";
    if (!stages.has(image) && !NODE_24.test(image)) {
      problems.push(`${at(from)}: FROM ${image}: build on the official node:24 image with an explicit tag`);
    }
    const stage = from.getBuildStage();
    if (stage) stages.add(stage);
  }

  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    const command = instruction.getArgumentsContent() ?? "";
    if (keyword === "RUN" && NPM_INSTALL.test(command) && !/--omit[= ]dev\b/.test(command)) {
      problems.push(`${at(instruction)}: ${command}: installs dev dependencies too; add --omit=dev`);
    }
    if (keyword === "ADD") problems.push(`${at(instruction)}: ADD fetches and unpacks; COPY says what it does`);
  }

  const last = dockerfile.getFROMs().at(-1);
  const final = last ? dockerfile.getInstructions().filter((i) => i.isAfter(last)) : [];
  const user = final.filter((i) => i.getKeyword() === "USER").at(-1);
  const userName = user?.getExpandedArguments()[0]?.getValue().split(":")[0];
  if (!user) problems.push("the final stage has no USER: the processes would run as root");
  else if (userName === undefined || ROOT_USERS.has(userName)) {
    problems.push(`${at(user)}: USER ${userName ?? ""}: the processes would run as root`);
  }
  const entry = final.filter((i) => i.getKeyword() === "ENTRYPOINT" || i.getKeyword() === "CMD");
  if (!entry.some((i) => i.getKeyword() === "ENTRYPOINT")) problems.push("the final stage has no ENTRYPOINT");
  for (const instruction of entry) {
    if ((instruction as JSONInstruction).getJSONStrings().length === 0) {
      problems.push(
        `${at(instruction)}: ${instruction.getKeyword()} in shell form: /bin/sh would get SIGTERM, not the process; ` +
          'use the exec form ["..."]',
      );
    }
  }
  return problems;
}

/** A shell-form RUN's script: what the build gives `/bin/sh -c`. */
export interface RunScript {
  line: number;
  script: string;
}

/**
 * The scripts of a Dockerfile's shell-form RUN instructions (the exec form `["..."]` runs no shell), for a shell
 * linter. As Docker reads them: flags (`--mount=...`) left out, line continuations kept, comment lines inside them
 * dropped.
 */
export function runScripts(text: string): RunScript[] {
  return DockerfileParser.parse(text)
    .getInstructions()
    .filter((i) => i.getKeyword() === "RUN" && (i as JSONInstruction).getJSONStrings().length === 0)
    .map((i) => ({
      line: i.getRange().start.line + 1,
      script: (i.getRawArgumentsContent() ?? "")
        .split("\n")
        .filter((l) => !/^\s*#/.test(l))
        .join("\n"),
    }));
}
