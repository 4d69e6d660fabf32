'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');

const { App, tester } = require('./support/zapier');
const { BASE_URL, authData } = require('./support/live');

test('a good key connects, and the connection is labelled with the account name', async () => {
  const me = await tester(App.authentication.test, { authData: authData() });
  assert.equal(me.account.name, 'Default account');
  assert.match(me.account.id, /.+/);
  const label = await tester(App.authentication.connectionLabel, { authData: authData(), inputData: me });
  assert.equal(label, 'Default account');
});

test('a base URL with a trailing slash works the same', async () => {
  const me = await tester(App.authentication.test, { authData: { ...authData(), baseUrl: `${BASE_URL}/` } });
  assert.equal(me.account.name, 'Default account');
});

test('a wrong key is refused with Voxhook\'s code and message', async () => {
  await assert.rejects(
    tester(App.authentication.test, { authData: { ...authData(), apiKey: 'sk_live_wrongwrongwrongwrongwrongwrongwrong' } }),
    (error) => {
      const detail = JSON.parse(error.message); // z.errors.Error carries {message, code, status}
      assert.equal(detail.status, 401);
      assert.equal(detail.code, 'unauthorized');
      assert.ok(detail.message.length > 10, detail.message);
      return true;
    });
});

test('a server URL that is not http(s) is refused before any request', async () => {
  await assert.rejects(tester(App.authentication.test, { authData: { ...authData(), baseUrl: 'voxhook.example.com' } }),
    /Server URL must start with http/);
});

test('the API key goes to the Voxhook API only, never to other hosts or signed upload URLs', async () => {
  const { addApiKey } = require('../lib/api');
  const bundle = { authData: authData() };
  const add = (url) => addApiKey({ url, headers: {} }, null, bundle).headers.Authorization;
  assert.equal(add(`${BASE_URL}/api/v1/me`), `Bearer ${authData().apiKey}`);
  assert.equal(add('https://files.zapier.example/abc.mp3'), undefined);
  assert.equal(add(`${BASE_URL}/api/v1/uploads/up_1/content?expires=1&signature=x`), undefined);
  assert.equal(add(`${BASE_URL}.evil.example/api/v1/me`), undefined);
});
