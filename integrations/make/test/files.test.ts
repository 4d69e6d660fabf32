/**
 * The app's files: makecomapp.json and every code file it names parse and validate against
 * the JSON schemas in schemas/ (written here from Make's documented format), every file is
 * named by the manifest, and the module metadata hangs together.
 */

import test from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import Ajv from 'ajv';

import { APP_DIR, readJson } from './support/replay.ts';

type Manifest = {
  generalCodeFiles: Record<string, string | null>;
  components: Record<string, Record<string, { moduleType?: string; webhook?: string; connection?: string; codeFiles: Record<string, string> }>>;
};

const ajv = new Ajv.default({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const schema = (name: string) => ajv.getSchema(name) ?? (ajv.addSchema(readJson(`schemas/${name}`) as object, name), ajv.getSchema(name)!);

/** Which schema each kind of code file follows. */
const SCHEMA_OF: Record<string, string> = {
  base: 'base.schema.json', groups: 'groups.schema.json',
  communication: 'communication.schema.json', attach: 'communication.schema.json', detach: 'communication.schema.json',
  params: 'parameters.schema.json', staticParams: 'parameters.schema.json', mappableParams: 'parameters.schema.json',
  interface: 'parameters.schema.json', samples: 'samples.schema.json',
};

const manifest = readJson('makecomapp.json') as Manifest;

const validate = (schemaName: string, path: string): void => {
  const check = schema(schemaName);
  const valid = check(readJson(path));
  assert.ok(valid, `${path} does not follow ${schemaName}: ${ajv.errorsText(check.errors, { separator: '\n  ' })}`);
};

test('makecomapp.json follows the local app manifest schema', () => {
  validate('makecomapp.schema.json', 'makecomapp.json');
});

test('every code file the manifest names parses and follows its schema', () => {
  for (const [kind, path] of Object.entries(manifest.generalCodeFiles)) {
    if (path) validate(SCHEMA_OF[kind]!, path);
  }
  for (const [type, components] of Object.entries(manifest.components)) {
    for (const [name, component] of Object.entries(components)) {
      for (const [kind, path] of Object.entries(component.codeFiles)) {
        const schemaName = type === 'webhook' && kind === 'communication' ? 'webhook-communication.schema.json' : SCHEMA_OF[kind];
        assert.ok(schemaName, `${type} ${name}: no schema for code ${kind}`);
        validate(schemaName, path);
      }
    }
  }
});

test('every file of the app is named by the manifest, and names what exists', () => {
  const named = new Set<string>([...Object.values(manifest.generalCodeFiles).filter((path): path is string => Boolean(path))]);
  for (const components of Object.values(manifest.components)) {
    for (const component of Object.values(components)) for (const path of Object.values(component.codeFiles)) named.add(path);
  }
  const walk = (dir: string): string[] => readdirSync(join(APP_DIR, dir)).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(join(APP_DIR, path)).isDirectory() ? walk(path) : [relative('.', path)];
  });
  const present = ['general', 'connections', 'webhooks', 'modules'].flatMap(walk);
  assert.deepEqual(present.sort(), [...named].sort());
});

test('modules point at components that exist, and an instant trigger at its webhook', () => {
  const { module: modules = {}, webhook: webhooks = {}, connection: connections = {} } = manifest.components;
  for (const [name, module] of Object.entries(modules)) {
    assert.ok(module.connection && connections[module.connection], `${name}: unknown connection`);
    if (module.moduleType === 'instant_trigger') assert.ok(module.webhook && webhooks[module.webhook], `${name}: unknown webhook`);
  }
  for (const [name, webhook] of Object.entries(webhooks)) {
    assert.ok(webhook.connection && connections[webhook.connection], `webhook ${name}: unknown connection`);
  }
  const groups = readJson('general/groups.json') as { modules: string[] }[];
  assert.deepEqual(groups.flatMap((group) => group.modules).sort(), Object.keys(modules).sort());
});

test('the schemas reject what Make would reject', () => {
  const communication = schema('communication.schema.json');
  assert.equal(communication({ url: '/x', method: 'FETCH' }), false, 'an unknown method');
  assert.equal(communication({ url: '/x', repeat: { condition: '{{body.busy}}', delay: 1000 } }), false, 'a repeat without a limit');
  assert.equal(communication({ url: '/x', respnse: {} }), false, 'a misspelt directive');
  const parameters = schema('parameters.schema.json');
  assert.equal(parameters([{ name: 'format', type: 'select' }]), false, 'a select without options');
  assert.equal(parameters([{ name: 'x', type: 'string' }]), false, 'a type Make does not have');
});
