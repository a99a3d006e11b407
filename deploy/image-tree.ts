import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, matchesGlob, posix, relative } from "node:path";
import { type Copy, DockerfileParser, type JSONInstruction } from "dockerfile-ast";

/** The final stage of a Dockerfile built without an engine: its files under `root`, and how it starts. */
export interface ImageTree {
  /** The image's `/` on this machine: a container path P is join(root, P). */
  root: string;
  workdir: string;
  env: Record<string, string>;
  user: string;
  entrypoint: string[];
  cmd: string[];
  /** RUN commands left out (anything but npm, which could touch this machine's own paths); the caller checks them. */
  skippedRuns: string[];
}

interface Stage extends Omit<ImageTree, "skippedRuns"> {
  name: string | null;
}

/**
 * Builds the final stage of `dockerfile` under `out` without a container engine, for a test to run what the image
 * would run: the files each COPY puts there (from the build context, through its .dockerignore, or from an earlier
 * stage), and the npm commands of RUN, run in the stage's working directory with `runEnv`. The base image's own
 * files are not there (this machine's Node stands in for the image's), nor ownership. It knows the instructions
 * this project's Dockerfile uses and throws on any other, so a change it cannot follow is said, not skipped.
 */
export function buildImageTree(
  dockerfile: string,
  context: string,
  out: string,
  runEnv: Record<string, string> = {},
): ImageTree {
  const parsed = DockerfileParser.parse(readFileSync(dockerfile, "utf8"));
  const ignore = dockerignore(context);
  const stages: Stage[] = [];
  const skippedRuns: string[] = [];
  let stage: Stage | undefined;
  const current = (keyword: string): Stage => {
    if (!stage) throw new Error(`${keyword} before the first FROM`);
    return stage;
  };

  for (const instruction of parsed.getInstructions()) {
    const keyword = instruction.getKeyword();
    const args = instruction.getExpandedArguments().map((a) => a.getValue());
    const line = `line ${instruction.getRange().start.line + 1}`;
    switch (keyword) {
      case "ARG":
        if (stage) throw new Error(`${line}: ARG inside a stage is not emulated`);
        break; // its default is expanded into FROM by the parser
      case "FROM": {
        const [image = "", as, name] = args;
        const root = join(out, `stage-${stages.length}`);
        const parent = stages.find((s) => s.name === image);
        if (parent) cpSync(parent.root, root, { recursive: true, verbatimSymlinks: true });
        else mkdirSync(root, { recursive: true });
        stage = {
          name: as?.toUpperCase() === "AS" && name ? name : null,
          root,
          workdir: parent?.workdir ?? "/",
          env: { ...parent?.env },
          user: parent?.user ?? "root",
          entrypoint: parent?.entrypoint ?? [],
          cmd: parent?.cmd ?? [],
        };
        stages.push(stage);
        break;
      }
      case "WORKDIR": {
        const s = current(keyword);
        s.workdir = posix.resolve(s.workdir, args[0] ?? "");
        mkdirSync(join(s.root, s.workdir), { recursive: true });
        break;
      }
      case "ENV":
        for (const pair of args) {
          const at = pair.indexOf("=");
          if (at < 1) throw new Error(`${line}: only ENV KEY=VALUE is emulated`);
          current(keyword).env[pair.slice(0, at)] = pair.slice(at + 1);
        }
        break;
      case "COPY": {
        const s = current(keyword);
        const flags = Object.fromEntries(
          (instruction as Copy).getFlags().map((f) => [f.getName(), f.getValue() ?? ""]),
        );
        for (const flag of Object.keys(flags)) {
          if (!["from", "chown", "chmod"].includes(flag)) throw new Error(`${line}: COPY --${flag} is not emulated`);
        }
        const from = flags.from === undefined ? undefined : stages.find((x) => x.name === flags.from);
        if (flags.from !== undefined && !from) throw new Error(`${line}: no earlier stage ${flags.from}`);
        const sources = args.slice(0, -1);
        const target = args.at(-1) ?? "";
        const dest = posix.resolve(s.workdir, target);
        const intoDirectory = target.endsWith("/") || sources.length > 1;
        for (const source of sources) {
          if (/[*?[]/.test(source)) throw new Error(`${line}: COPY with wildcards is not emulated`);
          const to = join(s.root, intoDirectory ? posix.join(dest, posix.basename(source)) : dest);
          // From a stage as is (node_modules/.bin holds symlinks); from the context file by file, through .dockerignore.
          if (from)
            cpSync(join(from.root, posix.resolve(from.workdir, source)), to, {
              recursive: true,
              verbatimSymlinks: true,
            });
          else copyTree(join(context, source), to, (path) => !ignore(relative(context, path)), source);
        }
        break;
      }
      case "RUN": {
        const s = current(keyword);
        const command = instruction.getRawArgumentsContent() ?? "";
        if (!/^npm\s/.test(command)) {
          skippedRuns.push(command);
          break;
        }
        execFileSync("sh", ["-c", command], {
          cwd: join(s.root, s.workdir),
          env: { ...process.env, ...s.env, ...runEnv },
          stdio: ["ignore", "pipe", "pipe"],
        });
        break;
      }
      case "USER":
        current(keyword).user = args[0] ?? "";
        break;
      case "ENTRYPOINT":
      case "CMD": {
        const strings = (instruction as JSONInstruction).getJSONStrings().map((j) => j.getJSONValue());
        if (strings.length === 0) throw new Error(`${line}: ${keyword} in shell form is not emulated`);
        current(keyword)[keyword === "CMD" ? "cmd" : "entrypoint"] = strings;
        break;
      }
      case "EXPOSE":
      case "LABEL":
        break; // metadata only
      default:
        throw new Error(`${line}: ${keyword} is not emulated: extend deploy/image-tree.ts`);
    }
  }
  const { name: _, ...final } = current("the end");
  return { ...final, skippedRuns };
}

/**
 * Copies a file, or a directory's files (its contents, as COPY does), to `to`: those `keep` accepts. A file named
 * by the COPY that `keep` refuses fails, as in Docker; a file of a named directory is left out.
 */
function copyTree(from: string, to: string, keep: (path: string) => boolean, named: string, inner = false): void {
  if (!existsSync(from)) throw new Error(`COPY ${named}: not found`);
  if (statSync(from).isDirectory()) {
    for (const entry of readdirSync(from)) copyTree(join(from, entry), join(to, entry), keep, named, true);
  } else if (keep(from)) {
    mkdirSync(dirname(to), { recursive: true });
    cpSync(from, to);
  } else if (!inner) throw new Error(`COPY ${named}: not in the build context (.dockerignore leaves it out)`);
}

/**
 * Whether the build context leaves a path out, by `context`/.dockerignore as Docker reads it: patterns in order,
 * the last that matches the path or one of its parent directories wins, `!` keeps what it matches.
 */
function dockerignore(context: string): (path: string) => boolean {
  const file = join(context, ".dockerignore");
  const patterns = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "" && !l.startsWith("#"))
        .map((l) => {
          const keep = l.startsWith("!");
          return { keep, glob: posix.normalize(keep ? l.slice(1) : l).replace(/^\/|\/$/g, "") };
        })
    : [];
  return (path) => {
    const parts = path.split("/");
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let ignored = false;
    for (const { keep, glob } of patterns) {
      if (candidates.some((candidate) => matchesGlob(candidate, glob))) ignored = !keep;
    }
    return ignored;
  };
}
