// The Voxhook node inside n8n's execution engine against a live Voxhook: transcribe from a URL
// and from a binary property held in n8n's filesystem binary store, waiting by polling.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { liveVoxhook, nodeResult, runWorkflow, voxhookNode, workflowOf } from '../harness.mjs';

const voxhook = liveVoxhook();
const POLL = { waitForCompletion: true, waitMode: 'poll', pollIntervalSeconds: 1, timeoutSeconds: 240 };

test('transcribes a URL and waits for it by polling', async () => {
	const node = voxhookNode('Transcribe', {
		resource: 'transcription', operation: 'transcribe', source: 'url',
		url: `${voxhook.mediaUrl}/jfk.flac`, ...POLL,
		transcribeOptions: { language: 'en' },
	});
	const run = await runWorkflow(workflowOf(node), voxhook.credentials);
	const { items, error } = nodeResult(run, 'Transcribe');
	assert.equal(error, undefined, error?.message);
	assert.equal(items.length, 1);
	const transcription = items[0].json;
	assert.match(transcription.id, /^tr_/);
	assert.equal(transcription.status, 'completed');
	assert.equal(transcription.language, 'en');
	assert.equal(transcription.url, `${voxhook.mediaUrl}/jfk.flac`);
	assert.ok(transcription.result.utterances.length > 0, 'the result has utterances');
	assert.ok(Math.abs(transcription.audio_duration_seconds - 11) < 1, 'jfk.flac lasts 11 s');
});

test('streams a binary property from the filesystem store, with speaker labels, and simplifies', async () => {
	const file = path.join(voxhook.fixtures, 'sample.wav');
	const node = voxhookNode('Transcribe File', {
		resource: 'transcription', operation: 'transcribe', source: 'binary',
		binaryPropertyName: 'audio', ...POLL, simplify: true,
		transcribeOptions: { diarize: true, speakerCount: 2, language: 'en' },
	});
	const items = [{ json: { name: 'sample' }, file: { path: file, fileName: 'sample.wav', mimeType: 'audio/wav', property: 'audio' } }];
	const run = await runWorkflow(workflowOf(node, items), voxhook.credentials);

	const source = nodeResult(run, 'Items').items[0].binary.audio;
	assert.ok(source.id?.startsWith('filesystem'), `the item carries an id, not bytes: ${JSON.stringify(source).slice(0, 120)}`);
	assert.equal(source.data, 'filesystem-v2', 'no bytes in the item');

	const { items: output, error } = nodeResult(run, 'Transcribe File');
	assert.equal(error, undefined, error?.message);
	const simple = output[0].json;
	assert.deepEqual(Object.keys(simple).sort(), ['duration', 'error', 'id', 'language', 'speakers', 'status', 'text', 'utterances']);
	assert.equal(simple.status, 'completed');
	assert.ok(Math.abs(simple.duration - 30) < 1, `sample.wav lasts 30 s, got ${simple.duration}`);
	assert.ok(simple.utterances.every((utterance) => !('words' in utterance)), 'no word arrays');
	assert.ok(simple.speakers.length >= 1 && simple.speakers.every((s) => /^SPEAKER \d+$/.test(s)));

	// What Voxhook stored is the whole file, byte for byte in size, sent as an upload.
	const stored = await voxhook.api('GET', `/api/v1/transcriptions/${simple.id}`);
	assert.equal(stored.body.source, 'upload');
	assert.equal(stored.body.diarize, true);
	assert.equal(stored.body.speaker_count, 2);
	const upload = await voxhook.api('GET', `/api/v1/uploads/${stored.body.upload_id}`);
	assert.equal(upload.status, 200, JSON.stringify(upload.body));
	assert.equal(upload.body.size_bytes, statSync(file).size);
	assert.equal(upload.body.filename, 'sample.wav');
});

test('a node retried by n8n (Retry On Fail) reuses its idempotency key: one transcription, not two', async () => {
	const since = new Date(Date.now() - 1000).toISOString();
	const url = `${voxhook.mediaUrl}/long.wav?retry-test=${Date.now()}`;
	const node = voxhookNode('Transcribe', {
		resource: 'transcription', operation: 'transcribe', source: 'url', url,
		waitForCompletion: true, waitMode: 'poll', pollIntervalSeconds: 1, timeoutSeconds: 1,
	}, { retryOnFail: true, maxTries: 3, waitBetweenTries: 0 });
	const run = await runWorkflow(workflowOf(node), voxhook.credentials);
	const { items, error } = nodeResult(run, 'Transcribe');
	const listed = await voxhook.api('GET', `/api/v1/transcriptions?created_after=${encodeURIComponent(since)}&limit=100&include_result=false`);
	const ours = listed.body.data.filter((transcription) => transcription.url === url);
	assert.equal(ours.length, 1, 'up to three tries (the first always times out), one transcription');
	if (error) {
		assert.match(error.message, /did not finish within 1 s/);
		assert.ok(error.message.includes(ours[0].id), 'the error names it');
	} else {
		assert.equal(items[0].json.id, ours[0].id, 'a later try polled the same transcription to its end');
	}
	await voxhook.api('POST', `/api/v1/transcriptions/${ours[0].id}/cancel`);

	// Another execution of the same workflow is a new request: a new transcription.
	const queue = voxhookNode('Queue', { resource: 'transcription', operation: 'transcribe', source: 'url', url: `${voxhook.mediaUrl}/jfk.flac`, waitForCompletion: false });
	const first = nodeResult(await runWorkflow(workflowOf(queue), voxhook.credentials), 'Queue');
	const second = nodeResult(await runWorkflow(workflowOf(queue), voxhook.credentials), 'Queue');
	assert.notEqual(first.items[0].json.id, second.items[0].json.id);
	assert.equal(first.items[0].json.status, 'queued');
});
