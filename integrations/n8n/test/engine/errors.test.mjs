// What a user sees when things go wrong, through n8n's engine: a wrong key, a server that
// cannot be reached, a failed transcription, a timeout; per item, with "continue on fail".
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { liveVoxhook, nodeResult, runWorkflow, voxhookNode, workflowOf } from '../harness.mjs';

const voxhook = liveVoxhook();
const POLL = { waitForCompletion: true, waitMode: 'poll', pollIntervalSeconds: 1 };

function transcribe(name, parameters, extra) {
	return voxhookNode(name, { resource: 'transcription', operation: 'transcribe', source: 'url', ...parameters }, extra);
}

test('a wrong API key fails the node with Voxhook\'s 401 code and message', async () => {
	const node = transcribe('Transcribe', { url: `${voxhook.mediaUrl}/jfk.flac`, ...POLL, timeoutSeconds: 60 });
	const run = await runWorkflow(workflowOf(node), { ...voxhook.credentials, apiKey: 'sk_live_this-is-a-well-formed-but-unknown-key-000' });
	const { error } = nodeResult(run, 'Transcribe');
	assert.equal(error.name, 'NodeApiError');
	assert.equal(error.httpCode, '401');
	assert.match(error.message, /^Voxhook: .+ \[\w+\]$/);
	assert.match(error.description, /Check the API key of the Voxhook API credential/);
	assert.equal(run.data.resultData.error.message, error.message, 'the execution fails with it');
});

test('an unreachable base URL says so and names it', async () => {
	const node = transcribe('Transcribe', { url: `${voxhook.mediaUrl}/jfk.flac`, ...POLL, timeoutSeconds: 60 });
	const run = await runWorkflow(workflowOf(node), { ...voxhook.credentials, baseUrl: 'http://127.0.0.1:9/' });
	const { error } = nodeResult(run, 'Transcribe');
	assert.equal(error.message, 'Could not reach Voxhook at http://127.0.0.1:9');
	assert.match(error.description, /ECONNREFUSED.*Check the Base URL/);
});

test('a bad audio URL is refused by name before anything runs', async () => {
	const node = transcribe('Transcribe', { url: 'ftp://example.com/a.mp3', ...POLL, timeoutSeconds: 60 });
	const { error } = nodeResult(await runWorkflow(workflowOf(node), voxhook.credentials), 'Transcribe');
	assert.equal(error.httpCode, '422');
	assert.match(error.message, /\[validation_error\]$/);
	assert.match(error.description, /^url: /m);
});

test('a failed transcription is an error, not a success, with its id and code', async () => {
	const node = transcribe('Transcribe', { url: `${voxhook.mediaUrl}/notes.txt`, ...POLL, timeoutSeconds: 120 });
	const { items, error } = nodeResult(await runWorkflow(workflowOf(node), voxhook.credentials), 'Transcribe');
	assert.equal(items.length, 0);
	assert.match(error.message, /^Transcription tr_\S+ failed: .+ \[not_audio\]$/);
	const id = /tr_\S+/.exec(error.message)[0];
	assert.equal((await voxhook.api('GET', `/api/v1/transcriptions/${id}`)).body.status, 'failed');
});

test('a timeout fails with the transcription id, which keeps running', async () => {
	const node = transcribe('Transcribe', { url: `${voxhook.mediaUrl}/long.wav`, ...POLL, timeoutSeconds: 2 });
	const started = Date.now();
	const { error } = nodeResult(await runWorkflow(workflowOf(node), voxhook.credentials), 'Transcribe');
	assert.ok(Date.now() - started < 10_000, 'it gives up at the timeout');
	assert.match(error.message, /^Transcription (tr_\S+) did not finish within 2 s \(it is (queued|processing)\)$/);
	const id = /tr_\S+/.exec(error.message)[0];
	assert.match(error.description, /keeps running on Voxhook/);
	await voxhook.api('POST', `/api/v1/transcriptions/${id}/cancel`);
});

test('with continue on fail, each item stands alone: errors become items with code and index', async () => {
	const node = transcribe('Transcribe', { url: '={{ $json.url }}', ...POLL, timeoutSeconds: 120, simplify: true }, { onError: 'continueRegularOutput' });
	const items = [
		{ json: { url: `${voxhook.mediaUrl}/jfk.flac` } },
		{ json: { url: `${voxhook.mediaUrl}/notes.txt` } },
		{ json: { url: 'not a url' } },
	];
	const { items: output, error } = nodeResult(await runWorkflow(workflowOf(node, items), voxhook.credentials), 'Transcribe');
	assert.equal(error, undefined);
	assert.equal(output.length, 3);
	assert.equal(output[0].json.status, 'completed');
	assert.match(output[1].json.error, /failed: .+ \[not_audio\]$/);
	assert.equal(output[1].json.code, 'not_audio');
	assert.match(output[1].json.transcriptionId, /^tr_/);
	assert.equal(output[2].json.code, 'validation_error');
	assert.deepEqual(output.map((item) => item.pairedItem), [{ item: 0 }, { item: 1 }, { item: 2 }]);
});

test('without continue on fail, the error points at the failing item', async () => {
	const node = transcribe('Transcribe', { url: '={{ $json.url }}', ...POLL, timeoutSeconds: 120 });
	const items = [{ json: { url: `${voxhook.mediaUrl}/jfk.flac` } }, { json: { url: 'not a url' } }];
	const { error } = nodeResult(await runWorkflow(workflowOf(node, items), voxhook.credentials), 'Transcribe');
	assert.equal(error.context.itemIndex, 1);
});
