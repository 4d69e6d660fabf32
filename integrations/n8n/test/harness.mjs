// Runs workflow JSON through n8n's real execution engine (n8n-core's WorkflowExecute), the
// way n8n's own node tests do, with the package's built nodes (dist/) and a live Voxhook.
// What n8n's server would provide around the engine is written here: a node-type registry,
// a credentials helper (the credential type's own generic `authenticate` is applied, as n8n
// does) and the additional data of an execution. Binary data lives in n8n's filesystem mode.
import 'reflect-metadata';

import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const PACKAGE = path.resolve(here, '..');
const require = createRequire(path.join(PACKAGE, 'package.json'));

// n8n reads its settings from the environment once, at first use: a throw-away user folder
// and filesystem binary mode, as a self-hosted n8n 2.x runs by default.
const userFolder = mkdtempSync(path.join(tmpdir(), 'n8n-engine-'));
process.env.N8N_USER_FOLDER ??= userFolder;
process.env.N8N_DEFAULT_BINARY_DATA_MODE ??= 'filesystem';
process.env.N8N_BINARY_DATA_STORAGE_PATH ??= path.join(userFolder, 'binary');
process.env.N8N_LOG_LEVEL ??= 'error';

const core = require('n8n-core');
// n8n-core carries its own @n8n/di (its services are registered in that container).
const { Container } = createRequire(require.resolve('n8n-core/package.json'))('@n8n/di');
const workflowLib = require('n8n-workflow');
const { Workflow, ICredentialsHelper } = workflowLib;

const { Voxhook } = require(path.join(PACKAGE, 'dist/nodes/Voxhook/Voxhook.node.js'));
const { VoxhookTrigger } = require(path.join(PACKAGE, 'dist/nodes/VoxhookTrigger/VoxhookTrigger.node.js'));
const { VoxhookApi } = require(path.join(PACKAGE, 'dist/credentials/VoxhookApi.credentials.js'));

export const VOXHOOK = 'n8n-nodes-voxhook.voxhook';
export const ITEMS = 'test.items';

/**
 * A test-only source node: emits the items of its `items` parameter (JSON) and, for each
 * `file` named there, a binary property streamed into n8n's binary store from disk, so in
 * filesystem mode the Voxhook node receives an id, never the bytes.
 */
class TestItems {
	description = {
		displayName: 'Test Items',
		name: 'items',
		group: ['input'],
		version: 1,
		description: 'Emits the given items',
		defaults: { name: 'Items' },
		inputs: ['main'],
		outputs: ['main'],
		properties: [{ displayName: 'Items', name: 'items', type: 'json', default: '[{}]' }],
	};

	async execute() {
		const { createReadStream } = await import('node:fs');
		const given = JSON.parse(this.getNodeParameter('items', 0));
		const output = [];
		for (const entry of given) {
			const item = { json: entry.json ?? {} };
			if (entry.file) {
				const data = await this.helpers.prepareBinaryData(
					createReadStream(entry.file.path),
					entry.file.fileName,
					entry.file.mimeType,
				);
				item.binary = { [entry.file.property ?? 'data']: data };
			}
			output.push(item);
		}
		return [output];
	}
}

const nodeTypes = {
	[VOXHOOK]: new Voxhook(),
	'n8n-nodes-voxhook.voxhookTrigger': new VoxhookTrigger(),
	[ITEMS]: new TestItems(),
};

export const nodeTypeRegistry = {
	getByName: (type) => nodeTypes[type],
	getByNameAndVersion: (type) => nodeTypes[type],
	getKnownTypes: () => ({}),
};

const credentialType = new VoxhookApi();

/**
 * n8n's credentials helper, reduced to one credential type: it hands out the test's
 * credential data and applies the type's generic `authenticate` by resolving its
 * expressions against `$credentials`, as n8n's own helper does.
 */
class TestCredentialsHelper extends ICredentialsHelper {
	constructor(data) {
		super();
		this.data = data;
	}
	getParentTypes() {
		return [];
	}
	async authenticate(credentials, _type, requestOptions, workflow, node) {
		const headers = { ...(requestOptions.headers ?? {}) };
		for (const [name, value] of Object.entries(credentialType.authenticate.properties.headers)) {
			headers[name] = workflow.expression.getSimpleParameterValue(
				node, value, 'internal', { $credentials: credentials }, undefined, '',
			);
		}
		return { ...requestOptions, headers };
	}
	async preAuthentication() {
		return undefined;
	}
	async getCredentials() {
		throw new Error('not used');
	}
	async getDecrypted() {
		return { ...this.data };
	}
	async updateCredentials() {}
	async updateCredentialsOauthTokenData() {}
	getCredentialsProperties() {
		return credentialType.properties;
	}
	isCredentialUsableByNode() {
		return true;
	}
}

let started;
/** Start n8n's binary store (filesystem mode) once per process. */
export async function startEngine() {
	started ??= (async () => {
		await Container.get(core.BinaryDataService).init();
	})();
	await started;
}

/** The credential a node of a test workflow points at (n8n looks it up by id). */
export const CREDENTIAL_REFERENCE = { voxhookApi: { id: 'voxhook-test', name: 'Voxhook test' } };

/**
 * Run `workflowData` (nodes and connections, as n8n exports them) to its end with
 * WorkflowExecute, using `credentials` ({baseUrl, apiKey}) for every Voxhook node.
 * Returns n8n's run: `run.data.resultData.runData[nodeName][0]` holds each node's output or
 * error, `run.data.resultData.error` the workflow's error.
 */
export async function runWorkflow(workflowData, credentials, { executionId = randomId() } = {}) {
	await startEngine();
	const workflow = new Workflow({
		id: workflowData.id ?? 'wf-test',
		name: workflowData.name ?? 'test',
		nodes: workflowData.nodes,
		connections: workflowData.connections ?? {},
		active: false,
		nodeTypes: nodeTypeRegistry,
		settings: { executionOrder: 'v1' },
		staticData: {},
	});
	const additionalData = additionalDataFor(credentials, executionId, workflowData);
	const startNode = workflow.getNode(workflowData.nodes[0].name);
	const execute = new core.WorkflowExecute(additionalData, 'manual');
	return await execute.run({ workflow, startNode });
}

/** What n8n's server hands the engine for one execution. */
function additionalDataFor(credentials, executionId, workflowData) {
	const hooks = new core.ExecutionLifecycleHooks('manual', executionId, workflowData);
	const base = 'http://127.0.0.1:5678';
	return {
		credentialsHelper: new TestCredentialsHelper(credentials),
		hooks,
		executionId,
		restApiUrl: `${base}/rest`,
		instanceBaseUrl: base,
		webhookBaseUrl: `${base}/webhook`,
		webhookWaitingBaseUrl: `${base}/webhook-waiting`,
		webhookTestBaseUrl: `${base}/webhook-test`,
		formWaitingBaseUrl: `${base}/form-waiting`,
		variables: {},
		currentNodeParameters: undefined,
		executeWorkflow: async () => {
			throw new Error('sub-workflows are not used here');
		},
		logAiEvent: () => {},
		startRunnerTask: async () => {
			throw new Error('code tasks are not used here');
		},
	};
}

/**
 * Fill a dropdown as the editor does: the node's `loadOptions` method in n8n-core's
 * LoadOptionsContext, with the node's credential.
 */
export async function loadOptions(methodName, credentials, parameters = {}) {
	await startEngine();
	const node = voxhookNode('Voxhook', { resource: 'transcription', operation: 'transcribe', ...parameters });
	const workflow = new Workflow({
		id: 'wf-options', nodes: [node], connections: {}, active: false, nodeTypes: nodeTypeRegistry,
	});
	const context = new core.LoadOptionsContext(
		workflow, node, additionalDataFor(credentials, 'options', { nodes: [node] }), 'parameters.transcribeOptions.pipeline',
	);
	return await nodeTypes[VOXHOOK].methods.loadOptions[methodName].call(context);
}

/**
 * The trigger's webhook lifecycle methods in n8n-core's HookContext (what n8n runs on
 * activation and deactivation), with a workflow whose static data persists across calls
 * like the saved workflow's does. Returns `{ call(method), staticData, webhookUrl }`.
 */
export async function triggerLifecycle(credentials, parameters) {
	await startEngine();
	const node = {
		id: 'trigger-id', name: 'Voxhook Trigger', type: 'n8n-nodes-voxhook.voxhookTrigger', typeVersion: 1,
		position: [0, 0], webhookId: '0b7c5d4e-1f2a-4b3c-9d8e-7f6a5b4c3d2e', parameters, credentials: CREDENTIAL_REFERENCE,
	};
	const staticData = {};
	const workflow = new Workflow({
		id: 'wf-trigger', nodes: [node], connections: {}, active: true, nodeTypes: nodeTypeRegistry, staticData,
	});
	const additionalData = additionalDataFor(credentials, 'activation', { nodes: [node] });
	const description = nodeTypes['n8n-nodes-voxhook.voxhookTrigger'].description.webhooks[0];
	const webhookData = {
		httpMethod: 'POST', node: node.name, path: `${node.webhookId}/${description.path}`, webhookDescription: description,
		workflowId: workflow.id, workflowExecuteAdditionalData: additionalData,
	};
	const methods = nodeTypes['n8n-nodes-voxhook.voxhookTrigger'].webhookMethods.default;
	return {
		staticData: () => workflow.staticData,
		webhookUrl: `${additionalData.webhookBaseUrl}/${node.webhookId}/${description.path}`,
		call: async (method) => {
			const context = new core.HookContext(workflow, node, additionalData, 'trigger', 'activate', webhookData);
			return await methods[method].call(context);
		},
	};
}

/** Test a credential as n8n's credential tester does: the node's `testedBy` function. */
export async function testCredential(credentials) {
	await startEngine();
	const context = new core.CredentialTestContext(additionalDataFor(credentials, 'test', { nodes: [] }));
	const testName = nodeTypes[VOXHOOK].description.credentials[0].testedBy;
	return await nodeTypes[VOXHOOK].methods.credentialTest[testName].call(context, {
		id: 'voxhook-test', name: 'Voxhook test', type: 'voxhookApi', data: credentials,
	});
}

/** The items a node put out (first run, first output), or its error. */
export function nodeResult(run, nodeName) {
	const task = run.data.resultData.runData[nodeName]?.[0];
	if (!task) throw new Error(`${nodeName} did not run; workflow error: ${run.data.resultData.error?.message}`);
	return { items: task.data?.main?.[0] ?? [], error: task.error };
}

/** A Voxhook node of a workflow, with its parameters. */
export function voxhookNode(name, parameters, extra = {}) {
	return {
		id: `${name.toLowerCase().replace(/\W+/g, '-')}-id`,
		name,
		type: VOXHOOK,
		typeVersion: 1,
		position: [400, 0],
		parameters,
		credentials: CREDENTIAL_REFERENCE,
		...extra,
	};
}

/** A one-node workflow, or items → node when `items` is given. */
export function workflowOf(node, items) {
	if (!items) return { nodes: [node], connections: {} };
	const source = {
		id: 'items-id', name: 'Items', type: ITEMS, typeVersion: 1, position: [0, 0],
		parameters: { items: JSON.stringify(items) },
	};
	return {
		nodes: [source, node],
		connections: { Items: { main: [[{ node: node.name, type: 'main', index: 0 }]] } },
	};
}

/** The Voxhook of the test session (pytest hands its address and key over). */
export function liveVoxhook() {
	const baseUrl = process.env.VOXHOOK_BASE_URL;
	const apiKey = process.env.VOXHOOK_API_KEY;
	if (!baseUrl || !apiKey) throw new Error('VOXHOOK_BASE_URL and VOXHOOK_API_KEY must be set (run through pytest)');
	return {
		credentials: { baseUrl, apiKey },
		mediaUrl: process.env.VOXHOOK_MEDIA_URL,
		fixtures: process.env.VOXHOOK_FIXTURES,
		async api(method, apiPath, body) {
			const response = await fetch(`${baseUrl}${apiPath}`, {
				method,
				headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
				body: body === undefined ? undefined : JSON.stringify(body),
			});
			return { status: response.status, body: await response.json().catch(() => null) };
		},
	};
}

export { core, workflowLib, credentialType, Container };

function randomId() {
	return String(Math.floor(Math.random() * 1e9));
}
