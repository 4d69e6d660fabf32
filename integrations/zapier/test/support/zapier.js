'use strict';

/**
 * Running the app the way Zapier does. Most tests use zapier-platform-core's app tester
 * (`tester`). The app tester fixes two things Zapier's platform supplies per run: the
 * callback URL (always https://auth-json-server.zapier-staging.com/echo) and the RPC
 * endpoint and token z.stashFile talks to. `runOnZapier` calls the same handler the app
 * tester wraps (zapier-platform-core's createAppHandler) with those event fields set, so the
 * callback goes to a loopback receiver and stashed files to a local stand-in for Zapier's
 * file storage (`startZapierFileStorage`).
 *
 * With a token, zapier-platform-core also streams the run's log lines to Zapier's log
 * endpoint (LOGGING_ENDPOINT): the stand-in takes those too, so nothing leaves the machine.
 */

const http = require('node:http');
const crypto = require('node:crypto');

const zapier = require('zapier-platform-core');
const App = require('../../index');

const tester = zapier.createAppTester(App);
const handler = zapier.createAppHandler(App);

/** Run `method` ("creates.transcribe_audio.operation.perform") with Zapier's event fields. */
const runOnZapier = async (method, bundle, { callbackUrl, rpcBase, token } = {}) => {
  const event = { command: 'execute', method, bundle, storeKey: null, zcacheTestObj: {},
    ...(callbackUrl ? { callback_url: callbackUrl } : {}),
    ...(rpcBase ? { rpc_base: rpcBase, token } : {}) };
  const response = await handler(event);
  return { results: response.results, status: response.status };
};

/**
 * Plays Zapier's file storage: the RPC call z.stashFile makes for a presigned S3 POST, the
 * S3 POST itself (multipart, as zapier-platform-core sends it), and a GET of the stored file
 * at the URL z.stashFile answers.
 */
const startZapierFileStorage = async () => {
  const files = new Map();
  const logs = [];
  const token = crypto.randomBytes(16).toString('hex');
  let base = '';
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    if (req.method === 'POST' && req.url === '/rpc') {
      const call = JSON.parse(body.toString());
      const ok = req.headers['x-token'] === token && call.method === 'get_presigned_upload_post_data';
      const result = { url: `${base}/s3/`, fields: { key: `stash/${crypto.randomUUID()}/file` } };
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify(ok ? { id: call.id, result }
        : { id: call.id, error: `unexpected RPC ${call.method} or token` }));
    }
    if (req.method === 'POST' && req.url === '/s3/') {
      const form = await new Response(body, { headers: { 'content-type': req.headers['content-type'] } })
        .formData();
      const file = form.get('file');
      files.set(`/s3/${form.get('key')}`, { bytes: Buffer.from(await file.arrayBuffer()),
        contentType: form.get('Content-Type'), disposition: form.get('Content-Disposition') });
      return res.writeHead(204).end();
    }
    if (req.method === 'POST' && req.url === '/logs') {
      logs.push(body.toString());
      return res.writeHead(200).end();
    }
    const stored = req.method === 'GET' && files.get(req.url);
    if (stored) {
      res.writeHead(200, { 'Content-Type': stored.contentType, 'Content-Disposition': stored.disposition });
      return res.end(stored.bytes);
    }
    return res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
  const previousLogging = process.env.LOGGING_ENDPOINT;
  process.env.LOGGING_ENDPOINT = `${base}/logs`;
  return { rpcBase: `${base}/rpc`, token, files, logs,
    close: () => {
      if (previousLogging === undefined) delete process.env.LOGGING_ENDPOINT;
      else process.env.LOGGING_ENDPOINT = previousLogging;
      return new Promise((resolve) => server.close(resolve));
    } };
};

/** The hydrator call a dehydrated value ("hydrate|||{…}|||hydrate") stands for. */
const parseDehydrated = (value) => {
  const match = /^hydrate\|\|\|(.*)\|\|\|hydrate$/s.exec(value);
  if (!match) throw new Error(`not a dehydrated value: ${value}`);
  return JSON.parse(match[1]);
};

module.exports = { App, parseDehydrated, runOnZapier, startZapierFileStorage, tester };
