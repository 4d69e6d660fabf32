// One round trip through OpenAI's npm SDK: a transcription (verbose_json with words) of
// jfk.flac, the model list, and a bad key raising the SDK's AuthenticationError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';

const baseURL = `${process.env.VOXHOOK_BASE_URL}/v1`;
const client = new OpenAI({ baseURL, apiKey: process.env.VOXHOOK_API_KEY, maxRetries: 0 });
const jfk = () => fs.createReadStream(path.join(process.env.VOXHOOK_FIXTURES, 'jfk.flac'));

test('transcribes a file into the typed verbose_json shape', async () => {
  const result = await client.audio.transcriptions.create({
    file: jfk(), model: 'whisper-1', response_format: 'verbose_json',
    timestamp_granularities: ['word', 'segment'],
  });
  assert.equal(typeof result.text, 'string');
  assert.ok(Math.abs(result.duration - 11) < 0.01);
  assert.ok(result.segments.length > 0 && result.words.length > 0);
  assert.equal(result.segments.map((s) => s.text).join(' '), result.text);
});

test('plain json and the model list', async () => {
  const result = await client.audio.transcriptions.create({ file: jfk(), model: 'whisper-1' });
  assert.equal(result.usage.seconds, 11);
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.ok(ids.includes('whisper-1'));
});

test('a bad key raises AuthenticationError', async () => {
  const bad = new OpenAI({ baseURL, apiKey: `sk_live_${'x'.repeat(40)}`, maxRetries: 0 });
  await assert.rejects(
    bad.audio.transcriptions.create({ file: jfk(), model: 'whisper-1' }),
    (error) => error instanceof OpenAI.AuthenticationError && error.status === 401);
});
