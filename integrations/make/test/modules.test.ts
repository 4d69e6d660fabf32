/**
 * Every request the app's connection, webhook and modules describe, replayed against a live
 * Voxhook with sample values for their parameters (test/support/replay.ts), and every output
 * checked against the module's interface and its committed sample (a real answer; recorded
 * afresh with VOXHOOK_RECORD_SAMPLES=1).
 */

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { type Base, ModuleError, type Request, APP_DIR, readJson, replay } from './support/replay.ts';
import { FIXTURES, MEDIA_URL, api, connection, finishedTranscription, startReceiver } from './support/live.ts';

const base = readJson('general/base.iml.json') as Base;
const moduleFile = (module: string, code: string) => `modules/${module}/${module}.${code}.iml.json`;
const communication = (module: string) => readJson(moduleFile(module, 'communication')) as Request | Request[];

/** Run a module as Make would with these parameters (its static and mappable ones together). */
const runModule = (module: string, parameters: Record<string, unknown>, pageSize?: number) =>
  replay(communication(module), { base, context: { parameters, connection }, pageSize });

type Field = { name: string; type: string; spec?: Field[] | { type: string; spec?: Field[] } };

/** Every interface field (nested ones as a.b) must be in the output; the output holds no more. */
const interfacePaths = (fields: Field[], prefix = ''): string[] => fields.flatMap((field) => {
  const name = `${prefix}${field.name}`;
  const nested = field.type === 'collection' && Array.isArray(field.spec) ? interfacePaths(field.spec, `${name}.`) : [];
  return [name, ...nested];
});
const outputPaths = (value: unknown, prefix = ''): string[] => (value && typeof value === 'object' && !Array.isArray(value)
  ? Object.entries(value).flatMap(([key, child]) => [`${prefix}${key}`, ...outputPaths(child, `${prefix}${key}.`)])
  : []);

const tidy = (value: unknown) => JSON.parse(JSON.stringify(value)
  .replaceAll(MEDIA_URL, 'https://media.example.com').replace(/http:\/\/127\.0\.0\.1:\d+/g, 'https://hook.eu1.make.com'));

/** The output matches the interface (both ways) and has the shape of the committed sample. */
const checkOutput = (module: string, output: unknown, { nullable = [] as string[] } = {}) => {
  const declared = interfacePaths(readJson(moduleFile(module, 'interface')) as Field[]);
  const produced = outputPaths(output);
  const ignored = (path: string) => nullable.some((prefix) => path.startsWith(prefix)) || /\.(utterances|speakers)\./.test(path);
  for (const path of declared) assert.ok(produced.includes(path) || ignored(path), `${module}: interface field ${path} is not in the output`);
  for (const path of produced) assert.ok(declared.includes(path) || /^(body|headers)\./.test(path), `${module}: output field ${path} is not in the interface`);
  const file = join(APP_DIR, moduleFile(module, 'samples'));
  if (process.env.VOXHOOK_RECORD_SAMPLES === '1') writeFileSync(file, `${JSON.stringify(tidy(output), null, '\t')}\n`);
  const sample = JSON.parse(readFileSync(file, 'utf8'));
  assert.deepEqual(outputPaths(sample).filter((path) => !/^(body|headers)\./.test(path)).sort(),
    produced.filter((path) => !/^(body|headers)\./.test(path)).sort(), `${module}: samples differ from a live answer`);
};

test('connection: GET /me with the key, labelled with the account name; a wrong key fails with Voxhook\'s error', async () => {
  const check = readJson('connections/voxhook/voxhook.communication.iml.json') as Request;
  const good = await replay(check, { context: { parameters: connection } });
  assert.deepEqual(good.sent, ['GET /api/v1/me']);
  assert.deepEqual(good.metadata, { type: 'text', value: 'Default account' });
  await assert.rejects(replay(check, { context: { parameters: { ...connection, apiKey: 'sk_live_wrongwrongwrongwrongwrongwrongwrong' } } }),
    (error: Error) => error instanceof ModuleError && /^\[401\] \w+: .{10,}/.test(error.message));
});

test('Transcribe Audio from a URL waits (bounded repeat) and outputs the finished transcript', async () => {
  const run = await runModule('transcribe-audio', { source: 'url', wait: true, url: `${MEDIA_URL}/jfk.flac`, language: 'en', diarize: false });
  assert.equal(run.sent[0], 'POST /api/v1/transcriptions');
  assert.ok(run.sent.length >= 2 && run.sent.slice(1).every((line) => /^GET \/api\/v1\/transcriptions\/tr_/.test(line)));
  const output = run.outputs[0] as { status: string; id: string; result: { full_transcript: string } };
  assert.equal(output.status, 'completed');
  const direct = (await api('GET', `/transcriptions/${output.id}`)).body;
  assert.equal(output.result.full_transcript, direct.result.full_transcript);
  checkOutput('transcribe-audio', output, { nullable: ['error.', 'upload_id', 'started_at'] });
});

test('Transcribe Audio from a file: one multipart request with the bytes, then the poll', async () => {
  const data = readFileSync(join(FIXTURES, 'jfk.flac'));
  const run = await runModule('transcribe-audio', { source: 'file', wait: true, data, fileName: 'jfk.flac', language: 'en' });
  const output = run.outputs[0] as { status: string; source: string; upload_id: string };
  assert.equal(output.status, 'completed');
  assert.equal(output.source, 'upload');
  const upload = (await api('GET', `/uploads/${output.upload_id}`)).body;
  assert.equal(upload.size_bytes, data.length);
  assert.equal(upload.filename, 'jfk.flac');
});

test('Transcribe Audio: speaker options reach Voxhook; without waiting it outputs the queued one', async () => {
  const pipelines = (await api('GET', '/pipelines')).body.data as { code: string; can_diarize: boolean }[];
  const diarizing = pipelines.find((pipeline) => pipeline.can_diarize)!;
  const run = await runModule('transcribe-audio', { source: 'url', wait: false, url: `${MEDIA_URL}/sample.wav`,
    pipeline_code: diarizing.code, diarize: true, min_speakers: 1, max_speakers: 2 });
  assert.equal(run.sent.length, 1);
  const queued = run.outputs[0] as Record<string, unknown>;
  assert.deepEqual([queued.pipeline_code, queued.diarize, queued.min_speakers, queued.max_speakers, queued.language],
    [diarizing.code, true, 1, 2, null]);
  assert.ok(['queued', 'processing'].includes(String(queued.status)));
});

test('Transcribe Audio: a failed transcription fails the module with Voxhook\'s reason', async () => {
  await assert.rejects(runModule('transcribe-audio', { source: 'url', wait: true, url: `${MEDIA_URL}/notes.txt` }),
    (error: Error) => error instanceof ModuleError && /^The transcription failed: \[not_audio\] .{10,}/.test(error.message));
  await assert.rejects(runModule('transcribe-audio', { source: 'url', wait: true, url: `${MEDIA_URL}/jfk.flac`, pipeline_code: 'nope' }),
    (error: Error) => error instanceof ModuleError && /^\[422\] \w+: .*pipeline/.test(error.message));
});

test('Get a Transcription', async () => {
  const done = await finishedTranscription();
  const run = await runModule('get-transcription', { id: done.id });
  assert.deepEqual(run.outputs, [done]);
  checkOutput('get-transcription', run.outputs[0], { nullable: ['error.', 'upload_id', 'webhook_url'] });
  await assert.rejects(runModule('get-transcription', { id: 'tr_nope' }), (error: Error) => /^\[404\] /.test(error.message));
});

test('List Transcriptions pages through with starting_after, newest first, up to its limit', async () => {
  for (let i = 0; i < 3; i += 1) await finishedTranscription();
  const direct = (await api('GET', '/transcriptions?limit=5&status=completed')).body.data as { id: string }[];
  const run = await runModule('list-transcriptions', { status: ['completed'], limit: 5 }, 2);
  assert.deepEqual(run.sent.slice(0, 3).map((line) => line.replace(/starting_after=tr_\w+/, 'starting_after=…')), [
    'GET /api/v1/transcriptions?limit=2&status=completed',
    'GET /api/v1/transcriptions?limit=2&status=completed&starting_after=…',
    'GET /api/v1/transcriptions?limit=2&status=completed&starting_after=…']);
  assert.deepEqual((run.outputs as { id: string }[]).map((item) => item.id), direct.map((item) => item.id));
  checkOutput('list-transcriptions', run.outputs[0], { nullable: ['error.', 'upload_id', 'webhook_url'] });
});

test('Export Captions outputs the file Voxhook exports', async () => {
  const done = await finishedTranscription();
  const run = await runModule('export-captions', { id: done.id, format: 'vtt' });
  const direct = await (await fetch(`${connection.baseUrl}/api/v1/transcriptions/${done.id}/export?format=vtt`,
    { headers: { Authorization: `Bearer ${connection.apiKey}` } })).text();
  assert.deepEqual(run.outputs, [{ fileName: `${done.id}.vtt`, data: direct }]);
  assert.match(direct, /^WEBVTT/);
  checkOutput('export-captions', run.outputs[0]);
  const failed = await finishedTranscription('notes.txt');
  await assert.rejects(runModule('export-captions', { id: failed.id, format: 'srt' }),
    (error: Error) => /^\[409\] transcription_failed: /.test(error.message));
});

test('Make an API Call reaches any path with the connection\'s key', async () => {
  const run = await runModule('make-an-api-call', { url: '/pipelines', method: 'GET',
    qs: [{ key: 'unused', value: '1' }], headers: [{ key: 'X-Request-Id', value: 'make-test' }] });
  const output = run.outputs[0] as { statusCode: number; body: { data: { code: string }[] } };
  assert.equal(output.statusCode, 200);
  assert.ok(output.body.data.length >= 1);
  checkOutput('make-an-api-call', output);
  const posted = await runModule('make-an-api-call', { url: '/transcriptions', method: 'POST',
    body: { source: 'external_url', url: `${MEDIA_URL}/jfk.flac` } });
  assert.equal((posted.outputs[0] as { statusCode: number }).statusCode, 201);
});

test('Watch Transcriptions: attach subscribes the Make webhook, a delivery becomes output, detach removes it', async () => {
  const receiver = await startReceiver();
  try {
    const webhookFile = (code: string) => readJson(`webhooks/transcription-events/transcription-events.${code}.iml.json`) as Request;
    const attached = await replay(webhookFile('attach'), { base, context: { connection,
      parameters: { events: ['transcription.completed'] }, webhook: { url: receiver.url('/make-hook') } } });
    const { externalHookId } = attached.data as { externalHookId: string };
    assert.match(externalHookId, /^we_/);
    const endpoint = (await api('GET', `/webhook_endpoints/${externalHookId}`)).body;
    assert.deepEqual([endpoint.url, endpoint.events], [receiver.url('/make-hook'), ['transcription.completed']]);

    const done = await finishedTranscription();
    const delivery = await receiver.about(done.id);
    const body = JSON.parse(delivery.body.toString('utf8'));
    const webhookOutput = (await replay(webhookFile('communication'), { context: { body } })).outputs[0];
    const output = (await replay(communication('watch-transcriptions'), { context: { body: webhookOutput } })).outputs[0] as { type: string; data: { id: string } };
    assert.equal(output.type, 'transcription.completed');
    assert.equal(output.data.id, done.id);
    checkOutput('watch-transcriptions', output, { nullable: ['data.error.', 'data.upload_id', 'data.webhook_url'] });

    await replay(webhookFile('detach'), { base, context: { connection, webhook: { externalHookId } } });
    assert.equal((await api('GET', `/webhook_endpoints/${externalHookId}`)).status, 404);
  } finally {
    await receiver.close();
  }
});
