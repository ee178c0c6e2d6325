/**
 * Schema registration against the real registry when several producers start at once (a producers
 * group, #16): every one of them registers the same subjects and sets their compatibility level, and
 * none may fail because another got there first (Apicurio answers 409 to the second of two concurrent
 * first PUTs of a subject's config).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registerSubject } from '../../producers/registration.ts';
import { testConfig, uniqueName } from '../helpers/pipeline.ts';

test('three producers registering the same new subjects at once all succeed, with one id', async () => {
  const config = testConfig(uniqueName('regrace'));
  const problems: string[] = [];
  for (let i = 0; i < 8; i++) {
    const subject = `${uniqueName('regrace')}-key`;
    const results = await Promise.allSettled([1, 2, 3].map(() => registerSubject(config, subject, 'string')));
    for (const r of results) if (r.status === 'rejected') problems.push(String(r.reason));
    const ids = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    assert.equal(new Set(ids).size <= 1, true, `one schema id per subject: ${ids.join(', ')}`);
  }
  assert.deepEqual(problems, []);
});
