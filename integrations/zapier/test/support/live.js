'use strict';

/**
 * What the tests share: the live Voxhook the pytest harness started (its URL and key come in
 * the environment), direct API calls for setting the scene, loopback receivers that stand in
 * for Zapier's hook and callback URLs, and the conversion of what such a receiver got into
 * the bundle Zapier hands the app (cleanedRequest, and rawRequest with its "Http-" headers).
 */

const http = require('node:http');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest (tests/integrations/test_zapier.py)`);
  return value;
};

const BASE_URL = env('VOXHOOK_BASE_URL');
const API_KEY = env('VOXHOOK_API_KEY');
const MEDIA_URL = env('VOXHOOK_MEDIA_URL');

/** authData of a working connection. */
const authData = () => ({ baseUrl: BASE_URL, apiKey: API_KEY });

/** Call the live API directly (not through the app): {status, body}. */
const api = async (method, path, body, headers = {}) => {
  const response = await fetch(`${BASE_URL}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`,
      ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll a transcription until it ends (completed, failed or cancelled). */
const waitForEnd = async (id, timeoutMs = 120000) => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { body } = await api('GET', `/transcriptions/${id}`);
    if (['completed', 'failed', 'cancelled'].includes(body.status)) return body;
    await sleep(250);
  }
  throw new Error(`transcription ${id} did not end within ${timeoutMs} ms`);
};

/** A transcription made directly through the API, waited for. */
const finishedTranscription = async (file = 'jfk.flac', extra = {}) => {
  const created = await api('POST', '/transcriptions',
    { source: 'external_url', url: `${MEDIA_URL}/${file}`, language: 'en', ...extra });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created)}`);
  return waitForEnd(created.body.id);
};

/**
 * A loopback HTTP server that records every request (raw body bytes included) and answers
 * 200: what Zapier's hook or callback URL would be. `next()` resolves with the next request.
 */
const startReceiver = async () => {
  const received = [];
  const waiting = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const request = { method: req.method, url: req.url, headers: req.headers,
        body: Buffer.concat(chunks) };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"success"}');
      const waiter = waiting.shift();
      if (waiter) waiter(request); else received.push(request);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    next: (timeoutMs = 60000) => new Promise((resolve, reject) => {
      if (received.length) return resolve(received.shift());
      const timer = setTimeout(() => reject(new Error('no request reached the receiver in time')), timeoutMs);
      waiting.push((request) => { clearTimeout(timer); resolve(request); });
    }),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
};

/** The next request to `receiver` about transcription `id` (others are skipped). */
const deliveryAbout = async (receiver, id) => {
  for (;;) {
    const request = await receiver.next();
    const body = JSON.parse(request.body.toString('utf8'));
    if ((body.data ? body.data.id : body.id) === id) return request;
  }
};

/** "webhook-signature" -> "Http-Webhook-Signature": how Zapier spells rawRequest headers. */
const zapierHeaderName = (name) => `Http-${name.split('-')
  .map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('-')}`;

/** What a hook's perform (or a performResume) gets from Zapier for a received request. */
const asZapierRequest = (request) => {
  const content = request.body.toString('utf8');
  const [, querystring = ''] = request.url.split('?');
  return {
    cleanedRequest: JSON.parse(content),
    rawRequest: {
      method: request.method,
      querystring,
      headers: Object.fromEntries(Object.entries(request.headers)
        .map(([name, value]) => [zapierHeaderName(name), value])),
      content,
    },
  };
};

module.exports = { API_KEY, BASE_URL, MEDIA_URL, api, asZapierRequest, authData, deliveryAbout,
  finishedTranscription, sleep, startReceiver, waitForEnd };
