import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonSyntaxError, parseJson, stringifyJson } from '../../../producers/instabase/index.ts';

describe('parseJson', () => {
  it('keeps integers past 2^53 exact as bigint and leaves safe ones as numbers', () => {
    const v = parseJson(
      '{"ns":1765912514238248673,"min":-9223372036854775808,"safe":-9007199254740991,"f":1.7976931348623157e308,"e":1e3}',
    ) as Record<string, unknown>;
    assert.equal(v.ns, 1765912514238248673n);
    assert.equal(v.min, -9223372036854775808n);
    assert.equal(v.safe, -9007199254740991);
    assert.equal(v.f, 1.7976931348623157e308);
    assert.equal(v.e, 1000);
  });

  it('agrees with JSON.parse on everything else, strings with escapes included', () => {
    const text = '{"a":[1,-0.5,true,false,null,"x\\u00e9\\n\\"\\\\"],"b":{"c":"12345678901234567890"},"d":0}';
    assert.deepEqual(parseJson(text), JSON.parse(text));
    // The slow path too (a long digit run forces it).
    const slow = `${text.slice(0, -1)},"n":12345678901234567}`;
    const parsed = parseJson(slow) as Record<string, unknown>;
    assert.equal(parsed.n, 12345678901234567n);
    assert.deepEqual(parsed.a, JSON.parse(text).a);
  });

  it('does not let "__proto__" replace the prototype', () => {
    const v = parseJson('{"__proto__":{"polluted":1},"n":12345678901234567}') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ['__proto__', 'n']);
  });

  it('tells a cut-off body from one that is not JSON', () => {
    for (const cut of ['{"batches":[{"id":1', '{"a":"unterminated', '[1,2,', '{"n":12345678901234567']) {
      assert.throws(
        () => parseJson(cut),
        (e: unknown) => e instanceof JsonSyntaxError && e.truncated,
        cut,
      );
    }
    for (const junk of ['<html>502</html>', '{"a":1}}', '{"a":NaN}', "{'a':1}"]) {
      assert.throws(
        () => parseJson(junk),
        (e: unknown) => e instanceof JsonSyntaxError && !e.truncated,
        junk,
      );
    }
  });

  it('stringifyJson writes bigint back as exact literals', () => {
    const text = '{"a":1765912514238248673,"b":[-9223372036854775808,1.5],"c":"\\u0000bigint:5"}';
    assert.equal(stringifyJson(parseJson(text)), text);
  });
});
