import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendToChain, GENESIS_HASH } from './chain.ts';
import { CSV_COLUMNS, csvField, csvHeader, csvRow, jsonlLine } from './export-format.ts';

const [entry] = appendToChain('org_1', { seq: 0, hash: GENESIS_HASH }, [
  {
    occurredAt: new Date('2026-11-22T10:00:00Z'),
    actor: { kind: 'user', id: 'usr_1' },
    action: 'POST /v1/webhooks/endpoints',
    target: { endpointId: 'whe_1' },
    outcome: 'success',
    status: 201,
    requestId: 'req_1',
    details: { note: 'say "hi", then leave' },
    personalDataDigest: null,
  },
]);
const exported = { seq: 1, hash: entry!.hash, payload: entry!.payload, personalData: null };

test('a JSONL line is one JSON object holding the exact hashed payload', () => {
  const line = jsonlLine(exported);
  assert.ok(line.endsWith('\n'));
  assert.equal(line.indexOf('\n'), line.length - 1);
  assert.deepEqual(JSON.parse(line), exported);
});

test('CSV quotes fields with commas, quotes and line breaks (RFC 4180)', () => {
  assert.equal(csvHeader(), `${CSV_COLUMNS.join(',')}\r\n`);
  const row = csvRow(exported);
  assert.ok(row.endsWith('\r\n'));
  assert.match(row, /,"\{""note"":""say \\""hi\\"", then leave""\}",/);
  assert.equal(csvField('a\nb'), '"a\nb"');
  assert.equal(csvField(null), '');
});

test('CSV cells that a spreadsheet would run as a formula are defused', () => {
  assert.equal(csvField('=HYPERLINK("http://evil")'), `"'=HYPERLINK(""http://evil"")"`);
  assert.equal(csvField('+1'), "'+1");
  assert.equal(csvField('-1'), "'-1");
  assert.equal(csvField('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvField('plain'), 'plain');
});
