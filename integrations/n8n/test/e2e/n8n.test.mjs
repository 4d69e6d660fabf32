// End to end in a real n8n (npm's n8n, started as `n8n start`) with the packed package
// installed as a community package, against a live Voxhook: the trigger subscribes on
// activation and runs on a real, signed delivery; a forged one gets 401 and runs nothing; a
// restart does not subscribe twice; deactivation deletes the endpoint; "Resume on Webhook"
// finishes an execution that waited; the no-community-node recipe (HTTP Request + Wait)
// works; every recipe's node types exist in this n8n.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { N8nInstance, PACKAGE, fetchOnce } from './n8n-instance.mjs';

const runtime = process.env.N8N_RUNTIME;
const voxhookUrl = process.env.VOXHOOK_BASE_URL;
const apiKey = process.env.VOXHOOK_API_KEY;
const mediaUrl = process.env.VOXHOOK_MEDIA_URL;
if (!runtime || !voxhookUrl) throw new Error('N8N_RUNTIME and VOXHOOK_BASE_URL must be set (run through pytest)');

const CREDENTIAL = { id: 'VoxhookE2eCred01', name: 'Voxhook (e2e)' };
const TRIGGER_WORKFLOW = 'VoxhookTriggerWf1';
const RESUME_WORKFLOW = 'VoxhookResumeWf01';
const RECIPE_HTTP_WAIT = 'voxhook-http-request-and-wait';
const TRIGGER_WEBHOOK_ID = '5b0e2f4c-7d1e-4c59-9a37-0d7c1f4b2e11';

const n8n = new N8nInstance(runtime);

async function voxhook(method, apiPath, body) {
	const response = await fetchOnce(`${voxhookUrl}${apiPath}`, {
		method,
		headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return { status: response.status, body: await response.json().catch(() => null) };
}

/** Poll `check` until it returns something; a failed request is retried (n8n or Voxhook may
 * drop a connection while busy), an error marked `fatal` ends the wait at once. */
async function eventually(what, check, timeoutMs = 120_000) {
	const deadline = Date.now() + timeoutMs;
	let lastError;
	while (Date.now() < deadline) {
		try {
			const result = await check();
			if (result) return result;
		} catch (error) {
			if (error.fatal) throw error;
			lastError = error;
		}
		await new Promise((resolve) => setTimeout(resolve, 500));
	}
	throw new Error(`timed out waiting for ${what} (last error: ${lastError?.message})\n--- n8n log ---\n${n8n.tail()}`);
}

const triggerUrl = () => `${n8n.baseUrl}/webhook/${TRIGGER_WEBHOOK_ID}/webhook`;
const ourEndpoints = async () => (await voxhook('GET', '/api/v1/webhook_endpoints')).body.data.filter((endpoint) => endpoint.url === triggerUrl());

function triggerWorkflow() {
	return {
		id: TRIGGER_WORKFLOW, name: 'Voxhook trigger (e2e)', active: false, settings: { executionOrder: 'v1' },
		nodes: [{
			id: 'b1f5c0de-0000-4000-8000-000000000001', name: 'Voxhook Trigger', type: 'n8n-nodes-voxhook.voxhookTrigger',
			typeVersion: 1, position: [0, 0], webhookId: TRIGGER_WEBHOOK_ID,
			parameters: { events: ['transcription.completed', 'transcription.failed'], download: 'srt', simplify: true },
			credentials: { voxhookApi: CREDENTIAL },
		}],
		connections: {},
	};
}

function resumeWorkflow() {
	return {
		id: RESUME_WORKFLOW, name: 'Transcribe and resume on webhook (e2e)', active: false, settings: { executionOrder: 'v1' },
		nodes: [
			{
				id: 'b1f5c0de-0000-4000-8000-000000000002', name: 'Start', type: 'n8n-nodes-base.webhook', typeVersion: 2,
				position: [0, 0], webhookId: '7c9a1e52-3b4d-4f61-8e2a-5d6c7b8a9f01',
				parameters: { httpMethod: 'POST', path: 'transcribe-and-wait', responseMode: 'onReceived', options: {} },
			},
			{
				id: 'b1f5c0de-0000-4000-8000-000000000003', name: 'Transcribe', type: 'n8n-nodes-voxhook.voxhook', typeVersion: 1,
				position: [300, 0],
				parameters: {
					resource: 'transcription', operation: 'transcribe', source: 'url', url: '={{ $json.body.url }}',
					waitForCompletion: true, waitMode: 'webhook', simplify: true, transcribeOptions: { language: 'en' },
				},
				credentials: { voxhookApi: CREDENTIAL },
			},
		],
		connections: { Start: { main: [[{ node: 'Transcribe', type: 'main', index: 0 }]] } },
	};
}

function recipes() {
	const folder = path.join(PACKAGE, 'workflows');
	return readdirSync(folder).filter((name) => name.endsWith('.json'))
		.map((name) => ({ name, workflow: JSON.parse(readFileSync(path.join(folder, name), 'utf8')) }));
}

before(async () => {
	await n8n.prepare();
	n8n.importJson('credentials', [
		{ ...CREDENTIAL, type: 'voxhookApi', data: { baseUrl: voxhookUrl, apiKey } },
		{ id: 'VoxhookHeaderAuth1', name: 'Voxhook API key (header)', type: 'httpHeaderAuth', data: { name: 'Authorization', value: `Bearer ${apiKey}` } },
	]);
	const httpWait = recipes().find((recipe) => recipe.workflow.id === RECIPE_HTTP_WAIT).workflow;
	httpWait.nodes.find((node) => node.name === 'Start transcription').parameters.url =
		`${voxhookUrl}/api/v1/transcriptions`;
	httpWait.nodes.find((node) => node.name === 'Start transcription').credentials.httpHeaderAuth = {
		id: 'VoxhookHeaderAuth1', name: 'Voxhook API key (header)',
	};
	n8n.importJson('workflow', [triggerWorkflow(), resumeWorkflow(), httpWait]);
	for (const id of [TRIGGER_WORKFLOW, RESUME_WORKFLOW, RECIPE_HTTP_WAIT]) n8n.cli('publish:workflow', `--id=${id}`);
	await n8n.start();
	await n8n.setupOwner();
});

after(async () => {
	await n8n.stop();
});

/** Once n8n serves the trigger's webhook, an unsigned POST gets the node's own 401. */
async function triggerServed() {
	await eventually('the trigger webhook', async () =>
		(await fetch(triggerUrl(), { method: 'POST', body: '{}' })).status === 401);
}

test('activation subscribes the trigger once, with its webhook URL', async () => {
	await triggerServed();
	const endpoints = await eventually('the subscription', async () => {
		const found = await ourEndpoints();
		return found.length ? found : null;
	});
	assert.equal(endpoints.length, 1);
	assert.deepEqual([...endpoints[0].events].sort(), ['transcription.completed', 'transcription.failed']);
});

test('a completed transcription starts an execution with the transcript and its SRT', async () => {
	const created = await voxhook('POST', '/api/v1/transcriptions', { source: 'external_url', url: `${mediaUrl}/jfk.flac`, language: 'en' });
	assert.equal(created.status, 201);
	const execution = await eventually('the trigger execution', async () =>
		(await n8n.executions(TRIGGER_WORKFLOW)).find((run) => run.status === 'success'));
	const { data } = await n8n.executionData(execution.id);
	const [item] = data.resultData.runData['Voxhook Trigger'][0].data.main[0];
	assert.equal(item.json.id, created.body.id);
	assert.equal(item.json.event, 'transcription.completed');
	assert.equal(item.json.status, 'completed');
	assert.ok(item.json.text.length > 0);
	assert.equal(item.binary.data.fileName, `${created.body.id}.srt`);
	assert.equal(item.binary.data.mimeType, 'application/x-subrip');
});

test('forged, unsigned and replayed deliveries get 401 and start nothing', async () => {
	const before = (await n8n.executions(TRIGGER_WORKFLOW)).length;
	const body = JSON.stringify({ type: 'transcription.completed', timestamp: new Date().toISOString(), data: { id: 'tr_forged', object: 'transcription', status: 'completed' } });
	const now = Math.floor(Date.now() / 1000);
	const sign = (secret, id, timestamp) => `v1,${createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64')).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
	const realSecret = (await voxhook('GET', '/api/v1/webhook_secret')).body.secret;
	const attempts = {
		forged: { 'webhook-id': 'msg_forged', 'webhook-timestamp': String(now), 'webhook-signature': sign(`whsec_${Buffer.from('not the secret at all, 32 bytes!').toString('base64')}`, 'msg_forged', now) },
		unsigned: {},
		replayed: { 'webhook-id': 'msg_old', 'webhook-timestamp': String(now - 600), 'webhook-signature': sign(realSecret, 'msg_old', now - 600) },
		tampered: { 'webhook-id': 'msg_tamper', 'webhook-timestamp': String(now), 'webhook-signature': sign(realSecret, 'msg_other', now) },
	};
	for (const [what, headers] of Object.entries(attempts)) {
		const response = await fetch(triggerUrl(), { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
		assert.equal(response.status, 401, `${what} delivery`);
	}
	await new Promise((resolve) => setTimeout(resolve, 1500));
	assert.equal((await n8n.executions(TRIGGER_WORKFLOW)).length, before, 'no execution started');

	// The same body correctly signed is accepted: the 401s above are the signature's doing.
	const good = await fetch(triggerUrl(), {
		method: 'POST',
		headers: { 'Content-Type': 'application/json', 'webhook-id': 'msg_good', 'webhook-timestamp': String(now), 'webhook-signature': `v1,bm90IGl0 ${sign(realSecret, 'msg_good', now)}` },
		body,
	});
	assert.equal(good.status, 200, await good.text());
	const accepted = await eventually('the signed delivery\'s execution', async () => {
		const runs = await n8n.executions(TRIGGER_WORKFLOW);
		return runs.length === before + 1 && runs[0].status === 'success' ? runs[0] : null;
	});
	// Its transcription does not exist, so its SRT cannot be fetched: the event still runs.
	const { data } = await n8n.executionData(accepted.id);
	const [item] = data.resultData.runData['Voxhook Trigger'][0].data.main[0];
	assert.equal(item.json.id, 'tr_forged');
	assert.match(item.json.exportError, /\[not_found\]|404/);
});

/** Watch the subscriptions for a few seconds: exactly `endpoint`, and nothing else. */
async function stillOnly(endpoint) {
	for (let look = 0; look < 12; look++) {
		const endpoints = await ourEndpoints();
		assert.equal(endpoints.length, 1, 'one subscription after the restart');
		assert.equal(endpoints[0].id, endpoint.id, 'the same one');
		await new Promise((resolve) => setTimeout(resolve, 500));
	}
}

test('a restart does not subscribe twice, and deliveries still arrive', async () => {
	const [endpoint] = await ourEndpoints();
	await n8n.stop();
	await n8n.start();
	await triggerServed();
	await stillOnly(endpoint);

	const before = (await n8n.executions(TRIGGER_WORKFLOW)).length;
	await voxhook('POST', '/api/v1/transcriptions', { source: 'external_url', url: `${mediaUrl}/notes.txt` });
	const execution = await eventually('the failed event\'s execution', async () => {
		const runs = await n8n.executions(TRIGGER_WORKFLOW);
		return runs.length > before && runs[0].status === 'success' ? runs[0] : null;
	});
	const { data } = await n8n.executionData(execution.id);
	const [item] = data.resultData.runData['Voxhook Trigger'][0].data.main[0];
	assert.equal(item.json.event, 'transcription.failed');
	assert.equal(item.json.error.code, 'not_audio');
});

test('resume on webhook: the execution waits, and Voxhook\'s callback finishes it', async () => {
	const started = await fetch(`${n8n.baseUrl}/webhook/transcribe-and-wait`, {
		method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: `${mediaUrl}/jfk.flac` }),
	});
	assert.equal(started.status, 200, await started.text());
	const waiting = await eventually('a waiting execution', async () => {
		const [run] = await n8n.executions(RESUME_WORKFLOW);
		if (run && !['new', 'running', 'waiting', 'success'].includes(run.status)) {
			const { data } = await n8n.executionData(run.id);
			throw Object.assign(new Error(`the execution ended ${run.status}: ${JSON.stringify(data.resultData.error ?? data.resultData.runData).slice(0, 1500)}`), { fatal: true });
		}
		return run && ['waiting', 'success'].includes(run.status) ? run : null;
	});
	const finished = await eventually('the resumed execution to succeed', async () => {
		const run = (await n8n.executions(RESUME_WORKFLOW)).find((candidate) => candidate.id === waiting.id);
		return run?.status === 'success' ? run : null;
	});
	const { data } = await n8n.executionData(finished.id);
	const runs = data.resultData.runData.Transcribe;
	const output = runs[runs.length - 1].data.main[0][0].json;
	assert.equal(output.status, 'completed');
	assert.match(output.id, /^tr_/);
	const stored = await voxhook('GET', `/api/v1/transcriptions/${output.id}`);
	assert.ok(stored.body.webhook_url.startsWith(`${n8n.baseUrl}/webhook-waiting/${finished.id}`), stored.body.webhook_url);
	const deliveries = await voxhook('GET', `/api/v1/transcriptions/${output.id}/webhook_deliveries`);
	const own = deliveries.body.data.find((delivery) => delivery.endpoint_id === null);
	assert.equal(own.status, 'delivered', JSON.stringify(own));
	assert.ok(own.attempts.some((attempt) => attempt.status_code === 200));
});

test('the HTTP Request + Wait recipe (no community node) finishes the same way', async () => {
	const started = await fetch(`${n8n.baseUrl}/webhook/voxhook-http-wait`, {
		method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ url: `${mediaUrl}/jfk.flac` }),
	});
	assert.equal(started.status, 200, await started.text());
	const finished = await eventually('the recipe execution', async () =>
		(await n8n.executions(RECIPE_HTTP_WAIT)).find((run) => run.status === 'success'));
	const { data } = await n8n.executionData(finished.id);
	const [item] = data.resultData.runData['Wait for Voxhook'][0].data.main[0];
	assert.equal(item.json.body.status, 'completed');
	assert.match(item.json.body.result.full_transcript, /\w/);
});

test('every recipe uses only node types this n8n knows', async () => {
	const response = await fetch(`${n8n.baseUrl}/types/nodes.json`, { headers: { cookie: n8n.cookie } });
	const known = new Set((await response.json()).map((type) => type.name));
	assert.ok(known.has('n8n-nodes-voxhook.voxhook') && known.has('n8n-nodes-voxhook.voxhookTrigger'), 'the package is installed');
	for (const { name, workflow } of recipes()) {
		for (const node of workflow.nodes) {
			if (node.type === 'n8n-nodes-base.stickyNote') continue;
			assert.ok(known.has(node.type), `${name}: ${node.type} is not a node of this n8n`);
		}
	}
});

test('deactivation deletes the endpoint on Voxhook', async () => {
	assert.equal((await ourEndpoints()).length, 1);
	const result = await n8n.rest('POST', `/workflows/${TRIGGER_WORKFLOW}/deactivate`);
	assert.equal(result.status, 200, JSON.stringify(result.body).slice(0, 500));
	await eventually('the endpoint to be deleted', async () => (await ourEndpoints()).length === 0, 30_000);
});
