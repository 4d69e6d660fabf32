'use strict';

/**
 * Samples are real Voxhook answers and output fields name real fields: both are checked
 * against answers of the live server, so a renamed or removed field fails here. With
 * VOXHOOK_RECORD_SAMPLES=1 the samples are recorded afresh (loopback URLs replaced).
 */

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { App, tester } = require('./support/zapier');
const { MEDIA_URL, api, authData, finishedTranscription } = require('./support/live');
const { outputFields } = require('../lib/transcription');

const SAMPLES = path.join(__dirname, '..', 'samples');

/** Every "a__b" / "a__list[]b" path of a value, the way Zapier flattens output. */
const flatKeys = (value, prefix = '') => {
  if (Array.isArray(value)) {
    return value.length && typeof value[0] === 'object' && value[0] !== null
      ? [prefix, ...value.flatMap((item) => flatKeys(item, `${prefix}[]`))] : [prefix];
  }
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, child]) => {
      const name = prefix.endsWith('[]') ? `${prefix}${key}` : prefix ? `${prefix}__${key}` : key;
      return [name, ...flatKeys(child, name)];
    });
  }
  return [];
};

/** The keys a sample should share with a live answer: everything but array contents. */
const shape = (value) => new Set(flatKeys(value).filter((key) => !key.includes('[]')));

const tidy = (value) => JSON.parse(JSON.stringify(value)
  .replaceAll(MEDIA_URL, 'https://media.example.com')
  .replace(/http:\/\/127\.0\.0\.1:\d+/g, 'https://hooks.zapier.com'));

const liveAnswers = async () => {
  const completed = await finishedTranscription('jfk.flac', { language: 'en' });
  const failed = await finishedTranscription('notes.txt');
  const running = (await api('POST', '/transcriptions', { source: 'external_url', url: `${MEDIA_URL}/long.wav` })).body;
  const cancelled = (await api('POST', `/transcriptions/${running.id}/cancel`)).body;
  const exported = await tester(App.creates.export_captions.operation.perform,
    { authData: authData(), inputData: { transcription_id: completed.id, format: 'srt' } });
  exported.file = 'https://zapier-dev-files.s3.amazonaws.com/cli-platform/example/tr_example.srt';
  return { 'transcription.completed': completed, 'transcription.failed': failed,
    'transcription.cancelled': cancelled, 'export.srt': exported };
};

test('every sample has the shape of a live answer', async () => {
  const answers = await liveAnswers();
  for (const [name, answer] of Object.entries(answers)) {
    const file = path.join(SAMPLES, `${name}.json`);
    if (process.env.VOXHOOK_RECORD_SAMPLES === '1') {
      fs.writeFileSync(file, `${JSON.stringify(tidy(answer), null, 2)}\n`);
    }
    const sample = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual([...shape(sample)].sort(), [...shape(answer)].sort(), `samples/${name}.json`);
  }
});

test('every output field names a field of a live answer', async () => {
  const answers = await liveAnswers();
  const available = new Set([...flatKeys(answers['transcription.completed']),
    ...flatKeys(answers['transcription.failed'])]);
  for (const field of outputFields) assert.ok(available.has(field.key), `outputFields: ${field.key} is not in Voxhook's answer`);
  const exportFields = App.creates.export_captions.operation.outputFields.map((field) => field.key);
  assert.deepEqual(exportFields.sort(), Object.keys(answers['export.srt']).sort());
});
