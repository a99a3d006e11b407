import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IProbe } from "kubernetes-models/v1/Probe";
import type { ISecret } from "kubernetes-models/v1/Secret";
import type { IService } from "kubernetes-models/v1/Service";
import { CONFIG_VARIABLES, ConfigError, loadConfig } from "../../src/config.ts";
import type { KubeObject } from "./validate.ts";

/** The parts of kustomization.yaml these rules read. */
export interface Kustomization {
  resources?: string[];
  secretGenerator?: { name: string; files?: string[] }[];
}

export interface Manifests {
  /** The YAML files of the directory, kustomization.yaml aside. */
  files: string[];
  objects: KubeObject[];
  kustomization: Kustomization;
}

/**
 * The image's commands a Deployment runs, with what each must have: the API roles their HTTP port (the variable
 * that sets it and its default) and the seconds they take to stop after SIGTERM (pm2's kill_timeout for them).
 */
const ROLES: Record<string, { port?: { variable: string; default: number }; stopSeconds: number }> = {
  ingest: { port: { variable: "PORT", default: 3000 }, stopSeconds: 10 },
  query: { port: { variable: "QUERY_PORT", default: 3001 }, stopSeconds: 10 },
  worker: { stopSeconds: 30 },
};
const PLACEHOLDER = "secret";

/**
 * What is wrong with these manifests for this pipeline, beyond what the API's schema says: every object listed in
 * the kustomization; a Deployment per command, one process per pod; resource requests; a non-root user; probes by
 * role on the ports the process listens on; an environment src/config.ts accepts; the keys file in a mounted
 * Secret's directory; rate limits split by the number of pods; Services, PodDisruptionBudgets and the autoscaler
 * selecting what exists; every Secret and ConfigMap referenced defined, with the keys referenced.
 */
export function checkRules({ files, objects, kustomization }: Manifests): string[] {
  const problems: string[] = [];
  const listed = new Set(kustomization.resources ?? []);
  for (const file of files) if (!listed.has(file)) problems.push(`kustomization.yaml: does not list ${file}`);
  for (const file of listed) if (!files.includes(file)) problems.push(`kustomization.yaml: lists ${file}, not here`);

  const of = <T>(kind: string) => objects.filter((o) => o.kind === kind) as unknown as T[];
  const deployments = of<IDeployment>("Deployment");
  const configMaps = of<IConfigMap>("ConfigMap");
  const autoscalers = of<IHorizontalPodAutoscaler>("HorizontalPodAutoscaler");
  const secrets = secretKeys(of<ISecret>("Secret"), kustomization);

  const roles = deployments.map((d) => d.spec?.template.spec?.containers[0]?.args?.[0]);
  for (const role of Object.keys(ROLES)) {
    const count = roles.filter((r) => r === role).length;
    if (count !== 1) problems.push(`${count} Deployments run \`${role}\`: one should`);
  }
  const images = new Set(deployments.flatMap((d) => d.spec?.template.spec?.containers.map((c) => c.image) ?? []));
  if (images.size > 1) problems.push(`the Deployments run different images (${[...images].join(", ")}): one image`);

  for (const deployment of deployments) {
    const name = `Deployment ${deployment.metadata?.name}`;
    const say = (problem: string) => problems.push(`${name}: ${problem}`);
    const spec = deployment.spec;
    const pod = spec?.template.spec;
    const labels = spec?.template.metadata?.labels ?? {};
    if (!selects(spec?.selector.matchLabels, labels)) say("its selector does not match its pod template's labels");
    if (pod?.securityContext?.runAsNonRoot !== true) say("pod securityContext.runAsNonRoot is not true");
    if (pod?.containers.length !== 1) {
      say("one container per pod: one process of the pipeline");
      continue;
    }
    const container = pod.containers[0] as IContainer;
    const role = container.args?.[0] ?? "";
    const rules = ROLES[role];
    if (!rules || container.args?.length !== 1) {
      say(`args ${JSON.stringify(container.args)}: one of the image's commands (${Object.keys(ROLES).join(", ")})`);
      continue;
    }
    if (container.command) say("`command` replaces the image's entrypoint: give the role in `args`");
    if (!container.image || /:latest$|^[^:]+$/.test(container.image)) say(`image ${container.image}: give a tag`);
    if (!container.resources?.requests?.cpu || !container.resources.requests.memory) {
      say("no resources.requests for cpu and memory: the scheduler and the autoscaler need them");
    }
    if (!container.resources?.limits?.memory) say("no resources.limits.memory");
    if (container.securityContext?.allowPrivilegeEscalation !== false) say("allowPrivilegeEscalation is not false");

    const env = environment(container, configMaps, secrets, say);
    for (const variable of Object.keys(env)) {
      if (!CONFIG_VARIABLES.includes(variable)) say(`${variable}: not a variable of src/config.ts`);
    }
    try {
      loadConfig(env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      say(error.message.replace(/\n\s*/g, " "));
    }

    const grace = pod.terminationGracePeriodSeconds ?? 30;
    const preStop = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
    if (grace < rules.stopSeconds + preStop) {
      say(
        `terminationGracePeriodSeconds ${grace}: under the ${preStop} s preStop plus the ${rules.stopSeconds} s the process takes to stop`,
      );
    }

    if (rules.port) {
      const port = Number(env[rules.port.variable] ?? rules.port.default);
      if (env.HOST !== "0.0.0.0")
        say("HOST is not 0.0.0.0: the kubelet's probes and the Service reach the pod's address");
      if (!container.ports?.some((p) => p.containerPort === port)) say(`no containerPort ${port}, where it listens`);
      checkProbe(container, container.readinessProbe, "readinessProbe", "/readyz", port, say);
      checkProbe(container, container.livenessProbe, "livenessProbe", "/healthz", port, say);
      if (env.AUTH === "off") say("AUTH=off: every route open to anyone");
      const keysDir = (env.API_KEYS_FILE ?? "").replace(/\/[^/]+$/, "");
      const mount = container.volumeMounts?.find((m) => m.mountPath === keysDir);
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      if (!mount || !volume?.secret)
        say(`API_KEYS_FILE ${env.API_KEYS_FILE}: not in a directory a Secret is mounted on`);
      else if (mount.subPath) say("the keys Secret is mounted with subPath: the kubelet never updates such a file");
      const autoscaler = autoscalers.find((a) => a.spec?.scaleTargetRef.name === deployment.metadata?.name);
      const pods = autoscaler ? autoscaler.spec?.minReplicas : spec?.replicas;
      if (env.API_INSTANCES !== String(pods ?? 1)) {
        say(
          `API_INSTANCES ${env.API_INSTANCES}: each pod allows 1/API_INSTANCES of a rate limit, so it is the number ` +
            `of pods (${autoscaler ? "the autoscaler's minReplicas" : "replicas"}: ${pods ?? 1})`,
        );
      }
    } else {
      const port = Number(env.WORKER_METRICS_PORT ?? 9474);
      if (env.METRICS === "off") say("METRICS=off: no metrics port, so no /healthz for the liveness probe");
      if (env.METRICS_HOST !== "0.0.0.0") say("METRICS_HOST is not 0.0.0.0: the kubelet probes the pod's address");
      checkProbe(container, container.livenessProbe, "livenessProbe", "/healthz", port, say);
    }
  }

  const selected = (kind: string, name: string | undefined, selector: Record<string, string> | undefined) => {
    const matches = deployments.filter((d) => selects(selector, d.spec?.template.metadata?.labels ?? {}));
    if (matches.length !== 1) problems.push(`${kind} ${name}: selects ${matches.length} Deployments, not one`);
    return matches.length === 1 ? matches[0] : undefined;
  };
  for (const service of of<IService>("Service")) {
    const target = selected("Service", service.metadata?.name, service.spec?.selector);
    const ports = target?.spec?.template.spec?.containers.flatMap((c) => c.ports ?? []) ?? [];
    for (const { targetPort } of service.spec?.ports ?? []) {
      if (target && !ports.some((p) => p.name === targetPort || p.containerPort === targetPort)) {
        problems.push(`Service ${service.metadata?.name}: targetPort ${targetPort} is no port of its pods`);
      }
    }
  }
  const budgets = of<IPodDisruptionBudget>("PodDisruptionBudget").map((b) =>
    selected("PodDisruptionBudget", b.metadata?.name, b.spec?.selector?.matchLabels),
  );
  for (const deployment of deployments) {
    const count = budgets.filter((b) => b === deployment).length;
    if (count !== 1) problems.push(`Deployment ${deployment.metadata?.name}: ${count} PodDisruptionBudgets, not one`);
  }
  for (const autoscaler of autoscalers) {
    const ref = autoscaler.spec?.scaleTargetRef;
    const target = deployments.find((d) => ref?.kind === "Deployment" && d.metadata?.name === ref.name);
    if (!target) problems.push(`HorizontalPodAutoscaler ${autoscaler.metadata?.name}: no Deployment ${ref?.name}`);
    else if (target.spec?.replicas !== undefined) {
      problems.push(`Deployment ${ref?.name}: sets replicas, which its autoscaler owns (an apply would reset it)`);
    }
  }
  return problems;
}

/** Whether a matchLabels selector selects pods with these labels (an empty or missing one selects nothing here). */
function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([key, value]) => labels[key] === value);
}

/** Secret name -> its keys: the Secret objects' and those the kustomization generates (`key=path` or a file name). */
function secretKeys(objects: ISecret[], kustomization: Kustomization): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const s of objects) keys.set(s.metadata?.name ?? "", Object.keys({ ...s.data, ...s.stringData }));
  for (const generator of kustomization.secretGenerator ?? []) {
    keys.set(
      generator.name,
      (generator.files ?? []).map((f) => (f.includes("=") ? f.slice(0, f.indexOf("=")) : (f.split("/").at(-1) ?? f))),
    );
  }
  return keys;
}

/**
 * The container's environment as the kubelet gives it: the ConfigMaps of envFrom, then env; a value from a
 * Secret is a placeholder. A ConfigMap or Secret (or key) that does not exist is reported.
 */
function environment(
  container: IContainer,
  configMaps: IConfigMap[],
  secrets: Map<string, string[]>,
  say: (problem: string) => void,
): Record<string, string> {
  const env: Record<string, string> = {};
  const configMap = (name: string) => {
    const found = configMaps.find((c) => c.metadata?.name === name);
    if (!found) say(`no ConfigMap ${name}`);
    return found?.data ?? {};
  };
  const secret = (name: string, key?: string) => {
    const found = secrets.get(name);
    if (!found) say(`no Secret ${name}`);
    else if (key !== undefined && !found.includes(key)) say(`Secret ${name} has no key ${key}`);
    return found ?? [];
  };
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, configMap(from.configMapRef.name ?? ""));
    if (from.secretRef) for (const key of secret(from.secretRef.name ?? "")) env[key] = PLACEHOLDER;
  }
  for (const variable of container.env ?? []) {
    const { secretKeyRef, configMapKeyRef } = variable.valueFrom ?? {};
    if (secretKeyRef) secret(secretKeyRef.name ?? "", secretKeyRef.key);
    const fromMap = configMapKeyRef && configMap(configMapKeyRef.name ?? "")[configMapKeyRef.key];
    env[variable.name] = variable.value ?? (secretKeyRef ? PLACEHOLDER : (fromMap ?? ""));
  }
  return env;
}

/** The probe is an HTTP GET of `path` on `port` (by number, or by the name of a containerPort that has it). */
function checkProbe(
  container: IContainer,
  probe: IProbe | undefined,
  what: string,
  path: string,
  port: number,
  say: (problem: string) => void,
): void {
  const get = probe?.httpGet;
  if (!get) {
    say(`no ${what} (HTTP GET ${path} on port ${port})`);
    return;
  }
  const probed =
    typeof get.port === "number" ? get.port : container.ports?.find((p) => p.name === get.port)?.containerPort;
  if (get.path !== path || probed !== port) {
    say(
      `${what}: GET ${get.path} on port ${get.port} (${probed}), not ${path} on ${port}, where the process answers it`,
    );
  }
}
