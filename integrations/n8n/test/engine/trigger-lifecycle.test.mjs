// The trigger's subscription lifecycle in n8n-core's HookContext against a live Voxhook:
// create subscribes and keeps id and secret; checkExists finds its own endpoint by id and
// URL (so n8n does not subscribe again) and notices one deleted on Voxhook; create never
// leaves two endpoints for one URL; delete unsubscribes.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { liveVoxhook, triggerLifecycle } from '../harness.mjs';

const voxhook = liveVoxhook();

test('checkExists, create and delete keep exactly one subscription per trigger', async () => {
	const trigger = await triggerLifecycle(voxhook.credentials, { events: ['transcription.completed'] });
	const ours = async () => (await voxhook.api('GET', '/api/v1/webhook_endpoints')).body.data
		.filter((endpoint) => endpoint.url === trigger.webhookUrl);

	assert.equal(await trigger.call('checkExists'), false, 'nothing stored yet');
	assert.equal(await trigger.call('create'), true);
	const [endpoint] = await ours();
	assert.deepEqual(endpoint.events, ['transcription.completed']);
	const stored = trigger.staticData()['node:Voxhook Trigger'];
	assert.equal(stored.endpointId, endpoint.id);
	assert.equal(stored.secret, (await voxhook.api('GET', '/api/v1/webhook_secret')).body.secret);

	assert.equal(await trigger.call('checkExists'), true, 'found by id and URL: no second subscription');

	await trigger.call('create'); // a create with an endpoint of this URL left: it replaces it
	const afterSecondCreate = await ours();
	assert.equal(afterSecondCreate.length, 1, 'never two endpoints for one URL');

	await voxhook.api('DELETE', `/api/v1/webhook_endpoints/${afterSecondCreate[0].id}`);
	assert.equal(await trigger.call('checkExists'), false, 'deleted on Voxhook: subscribe again');

	await trigger.call('create');
	assert.equal((await ours()).length, 1);
	assert.equal(await trigger.call('delete'), true);
	assert.equal((await ours()).length, 0, 'deactivation unsubscribes');
	assert.equal(await trigger.call('delete'), true, 'deleting again is harmless');
});
