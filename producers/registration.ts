import { request } from 'undici';
import type { Config } from '../core/config.ts';
import { registryConnectionError, registryDispatcher, registryHeaders } from '../core/registry.ts';

type AvroSchema = Record<string, unknown>;
interface AvroField {
  name: string;
  type: unknown;
  default?: unknown;
}

export class IncompatibleSchemaError extends Error {
  constructor(
    readonly subject: string,
    readonly problems: string[],
  ) {
    super(`schema for subject ${subject} is incompatible with the registered one: ${problems.join('; ')}`);
    this.name = 'IncompatibleSchemaError';
  }
}

/** Field-level reasons a record schema cannot read data written with the registered one (BACKWARD). */
export function describeIncompatibility(registered: AvroSchema, local: AvroSchema): string[] {
  const oldFields = new Map(((registered.fields as AvroField[] | undefined) ?? []).map((f) => [f.name, f]));
  const newFields = new Map(((local.fields as AvroField[] | undefined) ?? []).map((f) => [f.name, f]));
  const problems: string[] = [];
  for (const [name, field] of newFields) {
    const old = oldFields.get(name);
    if (!old && !('default' in field)) problems.push(`field "${name}" was added without a default`);
    if (old && JSON.stringify(old.type) !== JSON.stringify(field.type)) {
      problems.push(
        `field "${name}" changed type from ${JSON.stringify(old.type)} to ${JSON.stringify(field.type)}`,
      );
    }
  }
  for (const name of oldFields.keys()) {
    if (!newFields.has(name)) problems.push(`field "${name}" was removed`);
  }
  if (registered.name !== local.name || registered.namespace !== local.namespace) {
    problems.push(`record name changed from ${String(registered.namespace)}.${String(registered.name)}`);
  }
  return problems.length ? problems : ['the registry reports an incompatibility that no field diff explains'];
}

async function registryCall(config: Config, method: 'GET' | 'PUT' | 'POST', path: string, body?: unknown) {
  const dispatcher = registryDispatcher(config);
  let response;
  try {
    response = await request(`${config.registry.url}${path}`, {
      method,
      headers: registryHeaders(config),
      ...(dispatcher ? { dispatcher } : {}),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    throw registryConnectionError(config, err);
  }
  if (response.statusCode === 401 || response.statusCode === 403) {
    await response.body.dump();
    throw registryConnectionError(config, undefined, response.statusCode);
  }
  const text = await response.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { message: text.slice(0, 300) };
  }
  return { status: response.statusCode, json };
}

export interface SubjectCheck {
  subject: string;
  /** false when the subject has no version yet. */
  exists: boolean;
  compatible: boolean;
  problems: string[];
}

/** Checks a local schema against the subject's latest version without changing anything. */
export async function checkSubject(
  config: Config,
  subject: string,
  schema: AvroSchema,
): Promise<SubjectCheck> {
  const encoded = encodeURIComponent(subject);
  const latest = await registryCall(config, 'GET', `/subjects/${encoded}/versions/latest`);
  if (latest.status === 404) return { subject, exists: false, compatible: true, problems: [] };
  if (latest.status !== 200) throw new Error(`registry answered ${latest.status} for subject ${subject}`);
  const check = await registryCall(config, 'POST', `/compatibility/subjects/${encoded}/versions/latest`, {
    schema: JSON.stringify(schema),
    schemaType: 'AVRO',
  });
  if (check.status !== 200)
    throw new Error(`registry compatibility check answered ${check.status} for ${subject}`);
  if (check.json.is_compatible === true) return { subject, exists: true, compatible: true, problems: [] };
  const registered = JSON.parse(String(latest.json.schema)) as AvroSchema;
  return { subject, exists: true, compatible: false, problems: describeIncompatibility(registered, schema) };
}

/**
 * Refuses an incompatible schema with an error naming the subject and the fields, registers the
 * schema (an unchanged one gets its existing id), then sets the subject's compatibility level
 * explicitly. Plain HTTP rather than the registry client: the client cannot register a primitive
 * (key) schema and insists on its own default compatibility level.
 */
export async function registerSubject(config: Config, subject: string, schema: unknown): Promise<number> {
  const encoded = encodeURIComponent(subject);
  const check = await checkSubject(config, subject, schema as AvroSchema);
  if (!check.compatible) throw new IncompatibleSchemaError(subject, check.problems);
  const registered = await registryCall(config, 'POST', `/subjects/${encoded}/versions`, {
    schema: JSON.stringify(schema),
    schemaType: 'AVRO',
  });
  if (registered.status !== 200 || typeof registered.json.id !== 'number') {
    throw new Error(
      `registry refused the schema for ${subject}: ${registered.status} ${JSON.stringify(registered.json).slice(0, 300)}`,
    );
  }
  // Set after registering: some registries keep no per-subject config for a subject that does not exist.
  const wanted = config.registry.compatibility;
  let level = await registryCall(config, 'PUT', `/config/${encoded}`, { compatibility: wanted });
  // Members of a producers group start together: Apicurio answers 409 to the second of two concurrent
  // PUTs of a subject's first config. Whatever the other one set is read back, and set again if it
  // differs.
  for (let attempt = 0; level.status === 409 && attempt < 3; attempt++) {
    const current = await registryCall(config, 'GET', `/config/${encoded}`);
    const set = current.json.compatibilityLevel ?? current.json.compatibility;
    if (current.status === 200 && set === wanted) return registered.json.id;
    level = await registryCall(config, 'PUT', `/config/${encoded}`, { compatibility: wanted });
  }
  if (level.status !== 200)
    throw new Error(`registry refused compatibility level for ${subject}: ${level.status}`);
  return registered.json.id;
}
