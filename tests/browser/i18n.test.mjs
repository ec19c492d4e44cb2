// The dashboard's dictionaries have identical key sets, no empty text, and the same
// {placeholders} in both languages.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const dir = new URL('../../dashboards/i18n/', import.meta.url);
const zh = JSON.parse(readFileSync(new URL('zh-CN.json', dir), 'utf8'));
const en = JSON.parse(readFileSync(new URL('en.json', dir), 'utf8'));

test('zh-CN and en have the same keys', () => {
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
});

test('no empty text, and the same placeholders', () => {
  for (const k of Object.keys(zh)) {
    assert.ok(zh[k].trim() && en[k].trim(), k);
    const ph = (s) => (s.match(/\{[a-z_]+\}/g) || []).sort();
    assert.deepEqual(ph(zh[k]), ph(en[k]), k);
  }
});
