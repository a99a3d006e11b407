import { Ajv2020 } from "ajv/dist/2020.js";
import type { OpenAPIV3_1 } from "openapi-types";

export type Document = OpenAPIV3_1.Document;
export type Operation = OpenAPIV3_1.OperationObject;
type Media = OpenAPIV3_1.MediaTypeObject;

/** Every operation of the document, with its method and path. */
export function operations(document: Document): { method: string; path: string; operation: Operation }[] {
  return Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    Object.entries(item ?? {}).map(([method, operation]) => ({ method, path, operation: operation as Operation })),
  );
}

/** The examples of a media type or parameter: `example`, the values of `examples`, or its schema's `examples`. */
export function examplesOf(media: Media | OpenAPIV3_1.ParameterObject): unknown[] {
  if (media.example !== undefined) return [media.example];
  if (media.examples) return Object.values(media.examples).map((example) => (example as { value: unknown }).value);
  const schema = media.schema as { examples?: unknown[] } | undefined;
  return schema?.examples ?? [];
}

/** The operation's request body by content type (the document has no $ref). */
export function bodiesOf(operation: Operation): [type: string, Media][] {
  return Object.entries((operation.requestBody as OpenAPIV3_1.RequestBodyObject | undefined)?.content ?? {});
}

/** The operation's parameters (the document has no $ref). */
export function parametersOf(operation: Operation): OpenAPIV3_1.ParameterObject[] {
  return (operation.parameters ?? []) as OpenAPIV3_1.ParameterObject[];
}

/** The operation's responses by status, as response objects (the document has no $ref). */
export function responsesOf(operation: Operation): [status: string, OpenAPIV3_1.ResponseObject][] {
  return Object.entries(operation.responses ?? {}) as [string, OpenAPIV3_1.ResponseObject][];
}

/** The one success status the operation documents: a 2xx, or a redirect (GET /click's 302). */
export function successOf(operation: Operation): number {
  const statuses = responsesOf(operation)
    .map(([status]) => Number(status))
    .filter((status) => status < 400);
  if (statuses.length !== 1) throw new Error(`expected one success status, got ${statuses.join(", ")}`);
  return statuses[0] as number;
}

/** Checks values against the document's schemas (JSON Schema 2020-12, the dialect of OpenAPI 3.1). */
export function schemaValidator(): (schema: object, value: unknown) => string | undefined {
  // Not strict: OpenAPI's `format: binary` is no JSON Schema format; the rest is standard.
  const ajv = new Ajv2020({ strict: false });
  return (schema, value) => (ajv.validate(schema, value) ? undefined : ajv.errorsText(ajv.errors));
}
