// Get, Get Many (cursor pagination), Export, Cancel, Delete, the pipelines dropdown and the
// credential test, each run through n8n's engine (or its own contexts) against a live Voxhook.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
	liveVoxhook,
	loadOptions,
	nodeResult,
	runWorkflow,
	testCredential,
	voxhookNode,
	workflowOf,
} from '../harness.mjs';

const voxhook = liveVoxhook();

async function run(name, parameters, options = {}) {
	const node = voxhookNode(name, { resource: 'transcription', ...parameters }, options.node);
	const result = await runWorkflow(workflowOf(node, options.items), voxhook.credentials);
	return nodeResult(result, name);
}

async function completedTranscription() {
	const { items, error } = await run('Transcribe', {
		operation: 'transcribe', source: 'url', url: `${voxhook.mediaUrl}/jfk.flac`,
		waitForCompletion: true, waitMode: 'poll', pollIntervalSeconds: 1, timeoutSeconds: 240,
	});
	assert.equal(error, undefined, error?.message);
	return items[0].json;
}

test('get returns the transcription JSON, or its simplified form', async () => {
	const done = await completedTranscription();
	const full = await run('Get', { operation: 'get', transcriptionId: done.id });
	assert.equal(full.items[0].json.id, done.id);
	assert.ok(full.items[0].json.result.utterances[0].words.length > 0, 'full output keeps the words');
	const simple = await run('Get', { operation: 'get', transcriptionId: done.id, simplify: true });
	assert.equal(simple.items[0].json.text, done.result.full_transcript);
	assert.equal(simple.items[0].json.language, done.result.language);
});

test('export SRT is a binary file named after the transcription, with the SubRip type', async () => {
	const done = await completedTranscription();
	const { items, error } = await run('Export', {
		operation: 'export', transcriptionId: done.id, format: 'srt', outputBinaryPropertyName: 'captions',
	});
	assert.equal(error, undefined, error?.message);
	const file = items[0].binary.captions;
	assert.equal(file.fileName, `${done.id}.srt`);
	assert.equal(file.mimeType, 'application/x-subrip');
	assert.equal(file.fileExtension, 'srt');
	const expected = await fetch(`${voxhook.credentials.baseUrl}/api/v1/transcriptions/${done.id}/export?format=srt`, {
		headers: { Authorization: `Bearer ${voxhook.credentials.apiKey}` },
	}).then((response) => response.text());
	const { core, Container } = await import('../harness.mjs');
	const stored = await Container.get(core.BinaryDataService).getAsBuffer(file);
	assert.equal(stored.toString('utf8'), expected);
	assert.match(expected, /^1\r?\n00:00:\d\d,\d{3} --> /);

	const json = await run('Export JSON', { operation: 'export', transcriptionId: done.id, format: 'json' });
	assert.equal(json.items[0].json.id, done.id);
	assert.equal(json.items[0].binary, undefined);
});

test('get many follows the cursor across pages, with Return All, a limit and filters', async () => {
	const since = new Date(Date.now() - 1000).toISOString();
	const created = [];
	for (let index = 0; index < 103; index++) {
		const response = await voxhook.api('POST', '/api/v1/transcriptions', {
			source: 'external_url', url: `${voxhook.mediaUrl}/jfk.flac?page-test=${index}`,
		});
		assert.equal(response.status, 201, JSON.stringify(response.body));
		created.push(response.body.id);
		await voxhook.api('POST', `/api/v1/transcriptions/${response.body.id}/cancel`);
	}
	const filters = { createdAfter: since, status: ['cancelled'] };
	const all = await run('List', { operation: 'getAll', returnAll: true, filters, simplify: true });
	assert.equal(all.error, undefined, all.error?.message);
	const ids = all.items.map((item) => item.json.id);
	assert.equal(ids.length, 103, 'two pages (100 + 3), every item once');
	assert.deepEqual(new Set(ids), new Set(created));
	assert.deepEqual(ids, [...created].reverse(), 'newest first');

	const limited = await run('List', { operation: 'getAll', returnAll: false, limit: 101, filters });
	assert.deepEqual(limited.items.map((item) => item.json.id), [...created].reverse().slice(0, 101));

	const none = await run('List', {
		operation: 'getAll', returnAll: true, filters: { createdAfter: since, status: ['completed'] },
	});
	assert.ok(none.items.every((item) => !created.includes(item.json.id)), 'the status filter applies');
});

test('cancel stops a queued transcription and delete removes it', async () => {
	const queued = await run('Queue', {
		operation: 'transcribe', source: 'url', url: `${voxhook.mediaUrl}/long.wav`, waitForCompletion: false,
	});
	const id = queued.items[0].json.id;
	const cancelled = await run('Cancel', { operation: 'cancel', transcriptionId: id });
	assert.equal(cancelled.error, undefined, cancelled.error?.message);
	assert.equal(cancelled.items[0].json.status, 'cancelled');
	const deleted = await run('Delete', { operation: 'delete', transcriptionId: id });
	assert.deepEqual(deleted.items[0].json, { id, object: 'transcription', deleted: true });
	assert.equal((await voxhook.api('GET', `/api/v1/transcriptions/${id}`)).status, 404);
});

test('the pipeline dropdown lists the server pipelines, the default marked', async () => {
	const options = await loadOptions('getPipelines', voxhook.credentials);
	const served = (await voxhook.api('GET', '/api/v1/pipelines')).body.data;
	assert.deepEqual(options.map((option) => option.value), served.map((pipeline) => pipeline.code));
	const fallback = served.find((pipeline) => pipeline.default);
	assert.ok(options.find((option) => option.value === fallback.code).name.endsWith('(default)'));
});

test('the credential test names the account, and tells a wrong key from a wrong URL', async () => {
	const ok = await testCredential(voxhook.credentials);
	assert.deepEqual(ok, { status: 'OK', message: 'Connected to account "Default account"' });

	const wrongKey = await testCredential({ ...voxhook.credentials, apiKey: 'sk_live_wrongwrongwrongwrongwrongwrongwrong' });
	assert.equal(wrongKey.status, 'Error');
	assert.match(wrongKey.message, /refused the API key/);

	const noServer = await testCredential({ ...voxhook.credentials, baseUrl: 'http://127.0.0.1:9' });
	assert.equal(noServer.status, 'Error');
	assert.match(noServer.message, /^Could not reach Voxhook at http:\/\/127\.0\.0\.1:9/);

	const notUrl = await testCredential({ ...voxhook.credentials, baseUrl: 'localhost:8000' });
	assert.match(notUrl.message, /not an http\(s\) URL/);
});
