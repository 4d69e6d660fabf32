'use strict';

/** Export Captions (a dehydrated file, stashed with Zapier), Cancel, Find, and errors. */

const test = require('node:test');
const { after, before } = require('node:test');
const assert = require('node:assert/strict');

const { App, parseDehydrated, runOnZapier, startZapierFileStorage, tester } = require('./support/zapier');
const { BASE_URL, MEDIA_URL, api, authData, finishedTranscription } = require('./support/live');

// Zapier's file storage (and log endpoint: once a run had a token, zapier-platform-core's
// patched fetch keeps logging there) for the whole file.
let storage;
before(async () => { storage = await startZapierFileStorage(); });
after(async () => { await storage.close(); });

const voxhookError = (code, status) => (error) => {
  const detail = JSON.parse(error.message);
  assert.equal(detail.code, code, error.message);
  assert.equal(detail.status, status, error.message);
  assert.ok(detail.message.length > 10, error.message);
  return true;
};

test('Export Captions: SRT as text and as a dehydrated file Zapier stores', async () => {
  const done = await finishedTranscription('jfk.flac');
  const exported = await tester(App.creates.export_captions.operation.perform,
    { authData: authData(), inputData: { transcription_id: done.id, format: 'srt' } });
  const srt = await (await fetch(`${BASE_URL}/api/v1/transcriptions/${done.id}/export?format=srt`,
    { headers: { Authorization: `Bearer ${authData().apiKey}` } })).text();
  assert.equal(exported.content, srt);
  assert.match(srt, /^1\r?\n\d\d:\d\d:\d\d,\d\d\d --> /);
  assert.equal(exported.filename, `${done.id}.srt`);

  // What Zapier does when a later step uses the file: run the hydrator it names.
  const call = parseDehydrated(exported.file);
  assert.equal(call.method, 'hydrators.exportFile');
  assert.deepEqual(call.bundle, { transcription_id: done.id, format: 'srt' });
  const { results: fileUrl } = await runOnZapier(call.method, { authData: authData(), inputData: call.bundle },
    { rpcBase: storage.rpcBase, token: storage.token });
  const stored = await fetch(fileUrl);
  assert.equal(stored.status, 200);
  assert.equal(await stored.text(), srt);
  assert.match(stored.headers.get('content-disposition'), new RegExp(`${done.id}\\.srt`));
});

test('Export Captions: WebVTT and text formats', async () => {
  const done = await finishedTranscription('jfk.flac');
  const vtt = await tester(App.creates.export_captions.operation.perform,
    { authData: authData(), inputData: { transcription_id: done.id, format: 'vtt' } });
  assert.match(vtt.content, /^WEBVTT/);
  const txt = await tester(App.creates.export_captions.operation.perform,
    { authData: authData(), inputData: { transcription_id: done.id, format: 'txt' } });
  assert.equal(txt.content.split(/\s+/).join(' ').trim(), done.result.full_transcript.split(/\s+/).join(' ').trim());
  await assert.rejects(tester(App.creates.export_captions.operation.perform,
    { authData: authData(), inputData: { transcription_id: done.id, format: 'docx' } }), /Format must be one of srt, vtt, txt/);
});

test('Export Captions of a transcription that is not completed: Voxhook\'s 409 as a Zapier error', async () => {
  const failed = await finishedTranscription('notes.txt');
  await assert.rejects(tester(App.creates.export_captions.operation.perform,
    { authData: authData(), inputData: { transcription_id: failed.id, format: 'srt' } }),
  voxhookError('transcription_failed', 409));
});

test('Cancel Transcription stops a running one; a finished one cannot be cancelled', async () => {
  const created = (await api('POST', '/transcriptions', { source: 'external_url', url: `${MEDIA_URL}/long.wav` })).body;
  const cancelled = await tester(App.creates.cancel_transcription.operation.perform,
    { authData: authData(), inputData: { transcription_id: created.id } });
  assert.equal(cancelled.id, created.id);
  assert.equal(cancelled.status, 'cancelled');
  assert.equal((await api('GET', `/transcriptions/${created.id}`)).body.status, 'cancelled');
  const done = await finishedTranscription('jfk.flac');
  await assert.rejects(tester(App.creates.cancel_transcription.operation.perform,
    { authData: authData(), inputData: { transcription_id: done.id } }),
  voxhookError('transcription_not_cancellable', 409));
});

test('Find Transcription: by id, and nothing for an unknown id', async () => {
  const done = await finishedTranscription('jfk.flac');
  const found = await tester(App.searches.find_transcription.operation.perform,
    { authData: authData(), inputData: { transcription_id: done.id } });
  assert.equal(found.length, 1);
  assert.equal(found[0].id, done.id);
  assert.equal(found[0].result.full_transcript, done.result.full_transcript);
  assert.deepEqual(await tester(App.searches.find_transcription.operation.perform,
    { authData: authData(), inputData: { transcription_id: 'tr_doesnotexist' } }), []);
});

test('Voxhook\'s validation errors surface with their code, message and the fields named', async () => {
  await assert.rejects(tester(App.creates.transcribe_audio.operation.perform, { authData: authData(),
    inputData: { audio_url: `${MEDIA_URL}/jfk.flac`, pipeline_code: 'no-such-pipeline', wait_for_transcript: false } }),
  (error) => {
    const detail = JSON.parse(error.message);
    assert.equal(detail.status, 422);
    assert.match(detail.code, /pipeline|validation/);
    assert.match(detail.message, /pipeline_code/);
    return true;
  });
  await assert.rejects(tester(App.creates.transcribe_audio.operation.perform, { authData: authData(),
    inputData: { audio_url: `${MEDIA_URL}/jfk.flac`, diarize: true, min_speakers: 3, max_speakers: 2,
      wait_for_transcript: false } }),
  (error) => {
    const detail = JSON.parse(error.message);
    assert.equal(detail.code, 'validation_error');
    assert.match(detail.message, /min_speakers: .*max_speakers/s);
    return true;
  });
});
