'use strict';

/**
 * Transcribe Audio with "wait for the transcript": perform hands the callback URL to Voxhook
 * as webhook_url; Voxhook POSTs the finished transcription to a loopback receiver standing in
 * for Zapier's callback URL; that request, as Zapier passes it on, resumes the step.
 */

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { runOnZapier, tester, App } = require('./support/zapier');
const { MEDIA_URL, api, asZapierRequest, authData, deliveryAbout, startReceiver, waitForEnd } =
  require('./support/live');

const transcribe = 'creates.transcribe_audio.operation';
const { perform, performResume } = App.creates.transcribe_audio.operation;
const FIXTURES = process.env.VOXHOOK_FIXTURES;

/** perform with a real callback URL, then performResume with what Voxhook POSTed there. */
const transcribeAndResume = async (inputData) => {
  const receiver = await startReceiver();
  try {
    const callbackUrl = receiver.url(`/hooks/callback/${crypto.randomUUID()}?sig=a%2Fb`);
    const started = await runOnZapier(`${transcribe}.perform`, { authData: authData(), inputData },
      { callbackUrl });
    assert.equal(started.status, 'CALLBACK'); // Zapier pauses the Zap here
    const queued = started.results;
    assert.match(queued.id, /^tr_/);
    assert.equal(queued.webhook_url, callbackUrl); // byte for byte, query string included
    const callback = await deliveryAbout(receiver, queued.id);
    assert.equal(callback.url, callbackUrl.replace(/^http:\/\/[^/]+/, ''));
    const resumed = await tester(performResume,
      { authData: authData(), inputData, outputData: queued, ...asZapierRequest(callback) });
    return { queued, resumed };
  } finally {
    await receiver.close();
  }
};

test('from a URL: the step resumes with the finished transcript', async () => {
  const { queued, resumed } = await transcribeAndResume(
    { audio_url: `${MEDIA_URL}/jfk.flac`, language: 'en', wait_for_transcript: true });
  assert.equal(queued.source, 'external_url');
  assert.equal(queued.language, 'en');
  assert.equal(resumed.id, queued.id);
  assert.equal(resumed.status, 'completed');
  const direct = (await api('GET', `/transcriptions/${queued.id}`)).body;
  assert.equal(resumed.result.full_transcript, direct.result.full_transcript);
  assert.ok(resumed.result.utterances.length > 0);
});

test('from a file of an earlier step: streamed to a signed upload, then resumed', async () => {
  const { queued, resumed } = await transcribeAndResume(
    { file: `${MEDIA_URL}/jfk.flac`, filename: 'jfk.flac', language: 'en' });
  assert.equal(queued.source, 'upload');
  const upload = (await api('GET', `/uploads/${queued.upload_id}`)).body;
  const original = fs.readFileSync(path.join(FIXTURES, 'jfk.flac'));
  assert.equal(upload.size_bytes, original.length);
  assert.equal(upload.sha256, crypto.createHash('sha256').update(original).digest('hex'));
  assert.equal(upload.filename, 'jfk.flac');
  assert.equal(resumed.status, 'completed');
  assert.equal(resumed.upload_id, queued.upload_id);
});

test('with speaker labels: the pipeline, the diarize flag and speaker numbers reach Voxhook', async () => {
  const pipelines = await tester(App.triggers.pipelines.operation.perform, { authData: authData() });
  const diarizing = pipelines.find((pipeline) => pipeline.can_diarize);
  assert.ok(diarizing, 'the test stack has a pipeline with speaker labels');
  assert.ok(pipelines.every((pipeline) => pipeline.id === pipeline.code && pipeline.name.includes(pipeline.code)));
  const { queued, resumed } = await transcribeAndResume({ audio_url: `${MEDIA_URL}/sample.wav`,
    pipeline_code: diarizing.id, diarize: true, min_speakers: 1, max_speakers: 2, language: 'en' });
  assert.equal(queued.pipeline_code, diarizing.code);
  assert.equal(queued.diarize, true);
  assert.equal(queued.min_speakers, 1);
  assert.equal(queued.max_speakers, 2);
  assert.equal(resumed.status, 'completed');
  assert.ok(resumed.result.speakers.every((speaker) => /^SPEAKER \d+$/.test(speaker)));
});

test('a transcription that fails resumes into a Zapier error with Voxhook\'s reason', async () => {
  await assert.rejects(transcribeAndResume({ audio_url: `${MEDIA_URL}/notes.txt` }), (error) => {
    const detail = JSON.parse(error.message);
    assert.equal(detail.code, 'not_audio');
    assert.match(detail.message, /^The transcription failed: /);
    return true;
  });
});

test('a forged callback does not resume the step', async () => {
  const queued = (await api('POST', '/transcriptions', { source: 'external_url', url: `${MEDIA_URL}/jfk.flac` })).body;
  const finished = await waitForEnd(queued.id);
  const content = JSON.stringify(finished);
  const headers = { 'Http-Webhook-Id': 'msg_forged', 'Http-Webhook-Timestamp': String(Math.floor(Date.now() / 1000)),
    'Http-Webhook-Signature': `v1,${crypto.createHmac('sha256', 'not the secret').update(`msg_forged.x.${content}`).digest('base64')}` };
  await assert.rejects(tester(performResume, { authData: authData(), outputData: queued,
    cleanedRequest: finished, rawRequest: { method: 'POST', headers, content } }), /invalid_webhook_signature/);
});

test('without waiting: the step ends at once with the queued transcription and no webhook', async () => {
  const started = await runOnZapier(`${transcribe}.perform`, { authData: authData(),
    inputData: { audio_url: `${MEDIA_URL}/jfk.flac`, wait_for_transcript: false } }, { callbackUrl: 'http://127.0.0.1:9/unused' });
  assert.notEqual(started.status, 'CALLBACK');
  assert.equal(started.results.webhook_url, null);
  assert.ok(['queued', 'processing', 'completed'].includes(started.results.status));
});

/**
 * A server in another process that sends `size` bytes (audio/wav) as it makes them: the
 * first half at once, the rest only once `release()` is called.
 */
const startHalfHeldServer = async (size) => {
  const { spawn } = require('node:child_process');
  const script = `
    const chunk = Buffer.alloc(1024 * 1024, 7);
    let release;
    const released = new Promise((resolve) => { release = resolve; });
    process.stdin.once('data', () => release());
    require('node:http').createServer(async (req, res) => {
      res.writeHead(200, { 'Content-Type': 'audio/wav', 'Content-Length': String(${size}) });
      for (let sent = 0; sent < ${size}; sent += chunk.length) {
        if (sent === ${size} / 2) await released;
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      }
      res.end();
    }).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => child.stdout.once('data', (data) => resolve(Number(String(data).trim()))));
  return { url: `http://127.0.0.1:${port}/big.wav`, release: () => child.stdin.write('go\n'),
    close: () => child.kill() };
};

test('a file is piped to the upload URL as it arrives, never held whole', async () => {
  // The source sends half of a 64 MiB file and holds the rest back. A step that streams
  // is already sending those bytes to Voxhook's signed upload URL; one that reads the whole
  // file first would wait for the rest forever (and hold 64 MiB in memory).
  const SIZE = 64 * 1024 * 1024;
  const source = await startHalfHeldServer(SIZE);
  const diagnostics = require('node:diagnostics_channel');
  let uploadRequest = null;
  const watch = ({ request }) => {
    if (request.method === 'PUT' && request.path.includes('/content')) uploadRequest = request;
  };
  diagnostics.subscribe('http.client.request.created', watch);
  try {
    const step = runOnZapier(`${transcribe}.perform`, { authData: authData(), inputData: {
      file: source.url, wait_for_transcript: false } });
    step.catch(() => {}); // awaited below
    const deadline = Date.now() + 30000;
    let sentBeforeRelease = 0;
    while (Date.now() < deadline) {
      sentBeforeRelease = uploadRequest && uploadRequest.socket ? uploadRequest.socket.bytesWritten : 0;
      if (sentBeforeRelease > 8 * 1024 * 1024) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(sentBeforeRelease > 8 * 1024 * 1024,
      `only ${sentBeforeRelease} bytes went to the upload URL while half the file had arrived: the file is not streamed`);
    source.release();
    const started = await step;
    const upload = (await api('GET', `/uploads/${started.results.upload_id}`)).body;
    assert.equal(upload.size_bytes, SIZE);
    const expected = crypto.createHash('sha256');
    const chunk = Buffer.alloc(1024 * 1024, 7);
    for (let i = 0; i < SIZE / chunk.length; i += 1) expected.update(chunk);
    assert.equal(upload.sha256, expected.digest('hex'));
    await api('POST', `/transcriptions/${started.results.id}/cancel`);
  } finally {
    diagnostics.unsubscribe('http.client.request.created', watch);
    if (uploadRequest) uploadRequest.destroy();
    source.close();
  }
});

test('neither or both of URL and file is refused before anything is sent', async () => {
  await assert.rejects(tester(perform, { authData: authData(), inputData: {} }), /invalid_input/);
  await assert.rejects(tester(perform, { authData: authData(),
    inputData: { audio_url: `${MEDIA_URL}/jfk.flac`, file: `${MEDIA_URL}/jfk.flac` } }), /not both/);
});
