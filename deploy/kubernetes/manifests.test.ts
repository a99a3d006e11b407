import { join } from "node:path";
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IService } from "kubernetes-models/v1/Service";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../stack/paths.ts";
import { readManifests } from "./manifests.ts";
import { checkRules, type Manifests } from "./rules.ts";
import { type KubeObject, validateObject } from "./validate.ts";

const manifests = readManifests(join(repoRoot, "deploy/kubernetes"));

/** A copy of the manifests with one change made by `edit` (given the copy's objects by kind and name). */
function edited(edit: (find: <T>(kind: string, name: string) => T, copy: Manifests) => void): Manifests {
  const copy = structuredClone(manifests);
  const find = <T>(kind: string, name: string) => {
    const found = copy.objects.find((o) => o.kind === kind && o.metadata?.name === name);
    if (!found) throw new Error(`no ${kind} ${name}`);
    return found as unknown as T;
  };
  edit(find, copy);
  return copy;
}
const deployment = (find: <T>(kind: string, name: string) => T, role: string) =>
  find<IDeployment>("Deployment", `impressions-${role}`);
const container = (find: <T>(kind: string, name: string) => T, role: string) =>
  deployment(find, role).spec?.template.spec?.containers[0] as IContainer;
const envOf = (c: IContainer, name: string) => {
  const found = c.env?.find((e) => e.name === name);
  if (!found) throw new Error(`no ${name}`);
  return found;
};

describe("deploy/kubernetes", () => {
  it("holds Deployments for ingest, query and workers, their Services, budgets, the ingest autoscaler, config", () => {
    expect(manifests.objects.map((o) => `${o.kind} ${o.metadata?.name}`).sort()).toEqual([
      "ConfigMap impressions-config",
      "Deployment impressions-ingest",
      "Deployment impressions-query",
      "Deployment impressions-worker",
      "HorizontalPodAutoscaler impressions-ingest",
      "PodDisruptionBudget impressions-ingest",
      "PodDisruptionBudget impressions-query",
      "PodDisruptionBudget impressions-worker",
      "Service impressions-ingest",
      "Service impressions-query",
    ]);
    expect(manifests.kustomization.secretGenerator?.map((s) => s.name)).toEqual([
      "impressions-api-keys",
      "impressions-clickhouse",
    ]);
  });

  it.each(manifests.objects.map((o) => [`${o.kind} ${o.metadata?.name}`, o] as const))(
    "%s is valid by the Kubernetes API's schema, with no unknown field",
    (_, object) => {
      expect(validateObject(object)).toEqual([]);
    },
  );

  it("follows the pipeline's rules", () => {
    expect(checkRules(manifests)).toEqual([]);
  });

  it("reads a file mode as Kubernetes does: 0440 is octal (YAML 1.1)", () => {
    const ingest = manifests.objects.find((o) => o.metadata?.name === "impressions-ingest") as IDeployment;
    expect(ingest.spec?.template.spec?.volumes?.[0]?.secret?.defaultMode).toBe(0o440);
  });
});

describe("validateObject", () => {
  const base = () =>
    structuredClone(manifests.objects.find((o) => o.kind === "Deployment")) as KubeObject & IDeployment;

  it.each<[string, (d: IDeployment) => void, string]>([
    [
      "a count that is a string",
      (d) => Object.assign(d.spec ?? {}, { replicas: "2" }),
      "/spec/replicas: must be integer",
    ],
    [
      "a quantity that is not one",
      (d) => Object.assign(d.spec?.template.spec?.containers[0]?.resources?.requests ?? {}, { cpu: "half" }),
      'requests/cpu: must match format "quantity"',
    ],
    [
      "no containers",
      (d) => Object.assign(d.spec?.template.spec ?? {}, { containers: undefined }),
      "/spec/template/spec: must have required property containers",
    ],
    [
      "a misspelled field",
      (d) => Object.assign(d.spec?.template.spec?.containers[0] ?? {}, { readinesProbe: {} }),
      "/spec/template/spec/containers/0/readinesProbe: unknown field (not in V1Container)",
    ],
    [
      "a field at the wrong level",
      (d) => Object.assign(d.spec ?? {}, { resources: {} }),
      "/spec/resources: unknown field (not in V1DeploymentSpec)",
    ],
  ])("reports %s", (_, edit, problem) => {
    const object = base();
    edit(object);
    expect(validateObject(object).join("\n")).toContain(problem);
  });

  it("reports a kind it has no schema for", () => {
    expect(validateObject({ apiVersion: "batch/v1", kind: "CronJob" })).toEqual([
      "batch/v1 CronJob: not a kind these checks know (deploy/kubernetes/validate.ts)",
    ]);
  });
});

describe("checkRules", () => {
  it.each<[string, Parameters<typeof edited>[0], string]>([
    [
      "a file the kustomization does not list",
      (_, copy) => copy.files.push("extra.yaml"),
      "kustomization.yaml: does not list extra.yaml",
    ],
    [
      "no resource requests",
      (find) => delete container(find, "worker").resources?.requests,
      "Deployment impressions-worker: no resources.requests for cpu and memory",
    ],
    [
      "root",
      (find) =>
        Object.assign(deployment(find, "query").spec?.template.spec?.securityContext ?? {}, { runAsNonRoot: false }),
      "Deployment impressions-query: pod securityContext.runAsNonRoot is not true",
    ],
    [
      "a readiness probe of the wrong path",
      (find) => Object.assign(container(find, "ingest").readinessProbe?.httpGet ?? {}, { path: "/healthz" }),
      "Deployment impressions-ingest: readinessProbe: GET /healthz on port http (3000), not /readyz on 3000",
    ],
    [
      "an API without a readiness probe",
      (find) => delete container(find, "query").readinessProbe,
      "Deployment impressions-query: no readinessProbe (HTTP GET /readyz on port 3001)",
    ],
    [
      "a worker probed on a port it does not serve /healthz on",
      (find) => Object.assign(envOf(container(find, "worker"), "WORKER_METRICS_PORT"), { value: "9500" }),
      "livenessProbe: GET /healthz on port metrics (9474), not /healthz on 9500",
    ],
    [
      "a worker without a liveness probe",
      (find) => delete container(find, "worker").livenessProbe,
      "Deployment impressions-worker: no livenessProbe (HTTP GET /healthz on port 9474)",
    ],
    [
      "metrics on loopback",
      (find) =>
        Object.assign(find<{ data: Record<string, string> }>("ConfigMap", "impressions-config").data, {
          METRICS_HOST: "127.0.0.1",
        }),
      "Deployment impressions-worker: METRICS_HOST is not 0.0.0.0",
    ],
    [
      "a variable the app does not know",
      (find) => container(find, "query").env?.push({ name: "QUERY_PORTS", value: "3001" }),
      "Deployment impressions-query: QUERY_PORTS: not a variable of src/config.ts",
    ],
    [
      "a value the app refuses",
      (find) => container(find, "ingest").env?.push({ name: "AUTH", value: "auto" }),
      'Deployment impressions-ingest: invalid environment: AUTH="auto"',
    ],
    [
      "keys off",
      (find) => container(find, "ingest").env?.push({ name: "AUTH", value: "off" }),
      "Deployment impressions-ingest: AUTH=off",
    ],
    [
      "the keys file mounted with subPath",
      (find) => Object.assign(container(find, "query").volumeMounts?.[0] ?? {}, { subPath: "keys.json" }),
      "Deployment impressions-query: the keys Secret is mounted with subPath",
    ],
    [
      "the keys file outside the Secret's mount",
      (find) => Object.assign(envOf(container(find, "ingest"), "API_KEYS_FILE"), { value: "/app/keys.json" }),
      "API_KEYS_FILE /app/keys.json: not in a directory a Secret is mounted on",
    ],
    [
      "a Secret that is not defined",
      (find) =>
        Object.assign(envOf(container(find, "worker"), "CLICKHOUSE_PASSWORD").valueFrom?.secretKeyRef ?? {}, {
          name: "clickhouse",
        }),
      "Deployment impressions-worker: no Secret clickhouse",
    ],
    [
      "a Secret key that is not generated",
      (find) =>
        Object.assign(envOf(container(find, "query"), "CLICKHOUSE_QUERY_PASSWORD").valueFrom?.secretKeyRef ?? {}, {
          key: "pass",
        }),
      "Deployment impressions-query: Secret impressions-clickhouse has no key pass",
    ],
    [
      "a ConfigMap that is not defined",
      (find) => Object.assign(container(find, "ingest").envFrom?.[0]?.configMapRef ?? {}, { name: "config" }),
      "Deployment impressions-ingest: no ConfigMap config",
    ],
    [
      "API_INSTANCES that is not the autoscaler's minimum",
      (find) =>
        Object.assign(find<IHorizontalPodAutoscaler>("HorizontalPodAutoscaler", "impressions-ingest").spec ?? {}, {
          minReplicas: 3,
        }),
      "Deployment impressions-ingest: API_INSTANCES 2: each pod allows 1/API_INSTANCES of a rate limit",
    ],
    [
      "API_INSTANCES that is not the replica count",
      (find) => Object.assign(deployment(find, "query").spec ?? {}, { replicas: 3 }),
      "Deployment impressions-query: API_INSTANCES 2: each pod allows 1/API_INSTANCES of a rate limit, so it is the number of pods (replicas: 3)",
    ],
    [
      "replicas beside an autoscaler",
      (find) => Object.assign(deployment(find, "ingest").spec ?? {}, { replicas: 2 }),
      "Deployment impressions-ingest: sets replicas, which its autoscaler owns",
    ],
    [
      "an autoscaler of nothing",
      (find) =>
        Object.assign(
          find<IHorizontalPodAutoscaler>("HorizontalPodAutoscaler", "impressions-ingest").spec?.scaleTargetRef ?? {},
          { name: "ingest" },
        ),
      "HorizontalPodAutoscaler impressions-ingest: no Deployment ingest",
    ],
    [
      "a budget that selects no pod",
      (find) =>
        Object.assign(
          find<IPodDisruptionBudget>("PodDisruptionBudget", "impressions-worker").spec?.selector?.matchLabels ?? {},
          { "app.kubernetes.io/component": "workers" },
        ),
      "PodDisruptionBudget impressions-worker: selects 0 Deployments, not one",
    ],
    [
      "a Deployment without a budget",
      (_, copy) => {
        copy.objects = copy.objects.filter(
          (o) => !(o.kind === "PodDisruptionBudget" && o.metadata?.name === "impressions-query"),
        );
      },
      "Deployment impressions-query: 0 PodDisruptionBudgets, not one",
    ],
    [
      "a Service to a port its pods do not have",
      (find) =>
        Object.assign(find<IService>("Service", "impressions-query").spec?.ports?.[0] ?? {}, { targetPort: "web" }),
      "Service impressions-query: targetPort web is no port of its pods",
    ],
    [
      "a Service that selects every pod",
      (find) => delete find<IService>("Service", "impressions-query").spec?.selector?.["app.kubernetes.io/component"],
      "Service impressions-query: selects 3 Deployments, not one",
    ],
    [
      "a selector that misses its own pods",
      (find) =>
        Object.assign(deployment(find, "worker").spec?.template.metadata?.labels ?? {}, {
          "app.kubernetes.io/component": "consumer",
        }),
      "Deployment impressions-worker: its selector does not match its pod template's labels",
    ],
    [
      "a grace period shorter than the worker's stop",
      (find) =>
        Object.assign(deployment(find, "worker").spec?.template.spec ?? {}, { terminationGracePeriodSeconds: 10 }),
      "Deployment impressions-worker: terminationGracePeriodSeconds 10: under the 0 s preStop plus the 30 s",
    ],
    [
      "an entrypoint replaced",
      (find) => Object.assign(container(find, "worker"), { command: ["node", "src/worker/main.ts"] }),
      "Deployment impressions-worker: `command` replaces the image's entrypoint",
    ],
    [
      "a second Deployment of one command",
      (find, copy) =>
        copy.objects.push({ ...structuredClone(deployment(find, "worker")), metadata: { name: "w2" } } as never),
      "2 Deployments run `worker`: one should",
    ],
    [
      "an untagged image",
      (find) => Object.assign(container(find, "query"), { image: "impression-pipeline" }),
      "Deployment impressions-query: image impression-pipeline: give a tag",
    ],
  ])("reports %s", (_, edit, problem) => {
    expect(checkRules(edited(edit)).join("\n")).toContain(problem);
  });
});
