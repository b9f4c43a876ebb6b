import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { ErrorCode, errorCodeName, isTsmqError, TsmqError } from '../../src/common/errors.js';

test('docs/errors.md lists exactly the codes of the catalogue', () => {
  const doc = fs.readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\|\s*(\d+)\s*\|\s*([A-Z_]+)\s*\|/gm)].map(
    (m) => [m[2], Number(m[1])] as const,
  );
  assert.deepEqual(
    rows.sort((a, b) => a[1] - b[1]),
    Object.entries(ErrorCode).sort((a, b) => a[1] - b[1]),
  );
});

test('codes are unique and TsmqError carries code and name', () => {
  const codes = Object.values(ErrorCode);
  assert.equal(new Set(codes).size, codes.length);
  const e = new TsmqError('DISK_FULL', 'full');
  assert.equal(e.code, 1100);
  assert.equal(errorCodeName(1100), 'DISK_FULL');
  assert.ok(isTsmqError(e, 'DISK_FULL'));
  assert.ok(!isTsmqError(e, 'STORE_CLOSED'));
});
