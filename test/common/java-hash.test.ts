import assert from 'node:assert/strict';
import { test } from 'node:test';
import { javaStringHashCode } from '../../src/common/java-hash.js';

test('javaStringHashCode matches Java String.hashCode', () => {
  // Values computed by the JVM's String.hashCode.
  assert.equal(javaStringHashCode(''), 0);
  assert.equal(javaStringHashCode('a'), 97);
  assert.equal(javaStringHashCode('TagA'), 2598919);
  assert.equal(javaStringHashCode('hello world'), 1794106052);
  assert.equal(javaStringHashCode('polygenelubricants'), -2147483648);
});
