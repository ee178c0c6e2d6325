import type { Config } from '../core/config.ts';
import { RESOURCE_NAMES } from '../core/resources.ts';
import { keySubject, resourceTopic, valueSubject } from '../core/topics.ts';
import { registerSchemas } from '../producers/daemon.ts';
import { checkSubject } from '../producers/registration.ts';
import { keySchema, valueSchema } from '../schemas/index.ts';

/** Checks every local schema against the registry without changing anything; false when any is incompatible. */
export async function checkSchemas(config: Config): Promise<boolean> {
  let ok = true;
  for (const resource of RESOURCE_NAMES) {
    const topic = resourceTopic(config, resource);
    for (const [subject, schema] of [
      [valueSubject(topic), valueSchema(resource)],
      [keySubject(topic), keySchema()],
    ] as const) {
      const check = await checkSubject(config, subject, schema as unknown as Record<string, unknown>);
      const verdict = !check.exists
        ? 'new'
        : check.compatible
          ? 'compatible'
          : `INCOMPATIBLE: ${check.problems.join('; ')}`;
      process.stdout.write(`${subject.padEnd(60)} ${verdict}\n`);
      ok &&= check.compatible;
    }
  }
  return ok;
}

export async function registerAllSchemas(config: Config): Promise<void> {
  const registered = await registerSchemas(config, [...RESOURCE_NAMES]);
  for (const [resource, r] of registered) {
    process.stdout.write(
      `${resourceTopic(config, resource).padEnd(50)} value id ${r.valueId}, key id ${r.keyId}\n`,
    );
  }
}
