'use strict';

/**
 * Custom auth: the user's own Voxhook server (base URL) and an API key of their account.
 * Zapier tests the connection with GET /api/v1/me and labels it with the account's name.
 */

const { apiUrl } = require('./lib/api');

const test = async (z, bundle) => {
  if (!/^https?:\/\/[^/]+/i.test(String(bundle.authData.baseUrl || '').trim())) {
    throw new z.errors.Error('Server URL must start with http:// or https://, e.g. https://voxhook.example.com.',
      'invalid_base_url', 400);
  }
  const response = await z.request({ url: apiUrl(bundle, '/me') });
  return response.data; // {"account": {"id", "name"}, "key": {…}, …}
};

module.exports = {
  type: 'custom',
  fields: [
    { key: 'baseUrl', label: 'Server URL', required: true, type: 'string',
      helpText: 'Where your Voxhook server answers, e.g. `https://voxhook.example.com` (no `/api/v1`).' },
    { key: 'apiKey', label: 'API Key', required: true, type: 'password',
      helpText: 'A key of your account (`sk_live_…`): `voxhook keys create --name zapier`, or `POST /api/v1/keys`.' },
  ],
  test,
  connectionLabel: (z, bundle) => bundle.inputData.account.name,
};
