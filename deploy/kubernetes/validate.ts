import * as client from "@kubernetes/client-node";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";

/** A Kubernetes object as read from YAML. */
export type KubeObject = { apiVersion?: string; kind?: string; metadata?: { name?: string } } & Record<string, unknown>;

interface Model {
  validate(): void;
}

/**
 * The kinds these manifests may hold: kubernetes-models' class (the API's OpenAPI schema, compiled with ajv) and
 * the name of @kubernetes/client-node's model (its field list, generated from the same schema). Another kind is
 * reported, to be added here.
 */
const KINDS: Record<string, { model: new (data: never) => Model; fields: string }> = {
  "apps/v1 Deployment": { model: Deployment, fields: "V1Deployment" },
  "v1 Service": { model: Service, fields: "V1Service" },
  "v1 ConfigMap": { model: ConfigMap, fields: "V1ConfigMap" },
  "v1 Secret": { model: Secret, fields: "V1Secret" },
  "autoscaling/v2 HorizontalPodAutoscaler": { model: HorizontalPodAutoscaler, fields: "V2HorizontalPodAutoscaler" },
  "policy/v1 PodDisruptionBudget": { model: PodDisruptionBudget, fields: "V1PodDisruptionBudget" },
};

/**
 * What is wrong with an object by the Kubernetes API's OpenAPI schema (types, required fields, formats such as
 * quantities), and every field the API does not know (`readinesProbe`): the schema allows those, but the API
 * server refuses them (kubectl's field validation is strict by default), so a typo would only show at apply.
 */
export function validateObject(object: KubeObject): string[] {
  const kind = `${object.apiVersion} ${object.kind}`;
  const known = KINDS[kind];
  if (!known) return [`${kind}: not a kind these checks know (deploy/kubernetes/validate.ts)`];
  const problems: string[] = [];
  try {
    new known.model(object as never).validate();
  } catch (error) {
    const errors = (error as { errors?: { instancePath: string; message?: string }[] }).errors;
    if (!errors) throw error;
    for (const e of errors) problems.push(`${e.instancePath || "/"}: ${e.message ?? "invalid"}`);
  }
  problems.push(...unknownFields(object, known.fields, ""));
  return problems;
}

interface Attribute {
  baseName: string;
  type: string;
}

/** client-node's field list of a model, or undefined for a value type (string, IntOrString, Date, ...). */
function attributes(type: string): Attribute[] | undefined {
  const model = (client as unknown as Record<string, { getAttributeTypeMap?: () => Attribute[] } | undefined>)[type];
  return model?.getAttributeTypeMap?.();
}

function unknownFields(value: unknown, type: string, path: string): string[] {
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1]) {
    const item = array[1];
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, item, `${path}/${i}`)) : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map?.[1]) {
    const item = map[1];
    return isRecord(value) ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, item, `${path}/${k}`)) : [];
  }
  const fields = attributes(type);
  if (!fields || !isRecord(value)) return [];
  const byName = new Map(fields.map((f) => [f.baseName, f.type]));
  return Object.entries(value).flatMap(([key, v]) => {
    const fieldType = byName.get(key);
    return fieldType === undefined
      ? [`${path}/${key}: unknown field (not in ${type})`]
      : unknownFields(v, fieldType, `${path}/${key}`);
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
