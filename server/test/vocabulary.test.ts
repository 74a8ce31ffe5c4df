import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { assembleModules } from '../src/app.ts';
import { allErrors } from '../src/infra/http/errors.ts';
import { registeredIdPrefixes } from '../src/infra/ids.ts';
import { type KeelModule, vocabularyConflicts } from '../src/infra/module.ts';
import { declaredPermissions } from '../src/infra/permissions.ts';
import { allEventDefinitions } from '../src/platform/events/index.ts';
import { useTestApp } from './harness.ts';

const SOURCE_ROOT = path.resolve(import.meta.dirname, '../src');
/** What infra owns itself: the HTTP layer's codes and request ids. */
const INFRA_OWNER = 'keel';

describe('module vocabulary: every word has one owner, the module that lists it', () => {
  const t = useTestApp();
  const modules = () => assembleModules(t.app.runtime);
  const listers = (words: (module: KeelModule) => readonly string[]) => {
    const byWord = new Map<string, string[]>();
    for (const module of modules()) {
      for (const word of words(module)) byWord.set(word, [...(byWord.get(word) ?? []), module.name]);
    }
    return byWord;
  };

  test('the assembled modules list no word twice and no word another module declared', () => {
    assert.deepEqual(vocabularyConflicts(modules()), []);
  });

  test('every error code a module declares is listed by that module', () => {
    const listed = listers((module) => Object.keys(module.vocabulary?.errors ?? {}));
    const moduleCodes = allErrors().filter((entry) => entry.owner !== INFRA_OWNER);
    assert.ok(moduleCodes.length > 50, 'the domains’ codes are declared in their modules');
    for (const entry of moduleCodes) assert.deepEqual(listed.get(entry.code), [entry.owner], entry.code);
  });

  test('every id prefix, permission and event type is listed by exactly one module', () => {
    const prefixes = listers((module) => module.vocabulary?.idPrefixes ?? []);
    for (const [prefix, owner] of registeredIdPrefixes()) {
      if (owner !== INFRA_OWNER) assert.deepEqual(prefixes.get(prefix), [owner], prefix);
    }
    const permissions = listers((module) => Object.keys(module.vocabulary?.permissions ?? {}));
    for (const [permission, { owner }] of declaredPermissions()) {
      assert.deepEqual(permissions.get(permission), [owner], permission);
    }
    const events = listers((module) => (module.vocabulary?.events ?? []).map((event) => event.type));
    for (const event of allEventDefinitions()) assert.equal(events.get(event.type)?.length, 1, event.type);
  });

  test('infra keeps no domain’s words: it owns only request ids', () => {
    const infraPrefixes = [...registeredIdPrefixes()].filter(([, owner]) => owner === INFRA_OWNER);
    assert.deepEqual(
      infraPrefixes.map(([prefix]) => prefix),
      ['req'],
    );
  });

  test('every id prefix the code mints is declared', async () => {
    const minted = new Set<string>();
    for (const file of await sourceFiles()) {
      const text = await readFile(file, 'utf8');
      for (const match of text.matchAll(/\b(?:newId|derivedId)\(\s*'([a-z_]+)'/g)) minted.add(match[1]!);
    }
    assert.ok(minted.size > 15, `only ${minted.size} prefixes found`);
    for (const prefix of minted) assert.ok(registeredIdPrefixes().has(prefix), `${prefix} is not declared`);
  });

  test('a word listed by two modules, or by a module that did not declare it, is a clash', () => {
    const conflicts = vocabularyConflicts([
      { name: 'ledger', vocabulary: { errors: { ASSET_NOT_FOUND: { status: 404, title: 'x' } } } },
      { name: 'copycat', vocabulary: { errors: { ASSET_NOT_FOUND: { status: 404, title: 'x' } } } },
      { name: 'stray', vocabulary: { permissions: { 'stray:read': { description: 'x', session: true } } } },
      { name: 'echo', vocabulary: { events: [{ type: 'transfer.posted' }] } },
      { name: 'echo-again', vocabulary: { events: [{ type: 'transfer.posted' }] } },
    ]);
    assert.deepEqual(conflicts, [
      'error code ASSET_NOT_FOUND is listed by ledger and by copycat',
      'error code ASSET_NOT_FOUND is declared by ledger but listed by copycat',
      'permission stray:read, listed by stray, is not declared',
      'event type transfer.posted is listed by echo and by echo-again',
    ]);
  });
});

async function sourceFiles(): Promise<string[]> {
  const entries = await readdir(SOURCE_ROOT, { recursive: true });
  return entries
    .filter((entry) => entry.endsWith('.ts') && !entry.endsWith('.test.ts'))
    .map((entry) => path.join(SOURCE_ROOT, entry));
}
