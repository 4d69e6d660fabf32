import type {
	ICredentialsDecrypted,
	ICredentialTestFunctions,
	IDataObject,
	IExecuteFunctions,
	ILoadOptionsFunctions,
	INodeCredentialTestResult,
	INodeExecutionData,
	INodePropertyOptions,
	INodeType,
	INodeTypeDescription,
	IWebhookDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError, WAIT_INDEFINITELY } from 'n8n-workflow';

import { verifyDelivery } from '../shared/delivery';
import { baseUrlOf, toNodeError, voxhookRequest } from '../shared/transport';
import type { VoxhookCredentials } from '../shared/transport';
import { simplifyTranscription, unfinishedError } from '../shared/transcriptions';
import type { ExportFormat, Transcription } from '../shared/types';
import { FINAL_STATUSES } from '../shared/types';
import { properties } from './description';
import {
	cancelTranscription,
	createTranscription,
	deleteTranscription,
	exportTranscription,
	finishedItem,
	getTranscription,
	listTranscriptions,
	transcriptionItem,
	waitByPolling,
} from './operations';

/** One of Voxhook's pipelines, as `GET /api/v1/pipelines` lists it. */
interface Pipeline {
	code: string;
	description?: string;
	can_diarize?: boolean;
	default?: boolean;
	price_per_minute_usd?: string;
}

/**
 * The "Resume on Webhook" endpoint: a restart webhook (n8n's dispatch-and-wait, as in its
 * GitHub node), served at the execution's resume URL only while an execution waits. It is
 * not a trigger, so there is nothing to register on Voxhook and no webhookMethods.
 */
const RESUME_WEBHOOKS: IWebhookDescription[] = [
	{
		name: 'default',
		httpMethod: 'POST',
		responseMode: 'onReceived',
		path: '',
		restartWebhook: true,
	},
];

export class Voxhook implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Voxhook',
		name: 'voxhook',
		icon: { light: 'file:../../icons/voxhook.svg', dark: 'file:../../icons/voxhook.dark.svg' },
		group: ['transform'],
		version: 1,
		subtitle: '={{$parameter["operation"] + ": " + $parameter["resource"]}}',
		description: 'Transcribe audio and video with a self-hosted Voxhook server',
		defaults: { name: 'Voxhook' },
		usableAsTool: true,
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'voxhookApi', required: true, testedBy: 'voxhookApiTest' }],
		// "Resume on Webhook": n8n's resume URL of the execution goes to Voxhook as the
		// transcription's webhook_url; Voxhook's POST there wakes the execution up.
		webhooks: RESUME_WEBHOOKS,
		properties,
	};

	methods = {
		loadOptions: {
			/** The server's pipelines for the dropdown, the default first, with what each can do. */
			async getPipelines(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
				const { body } = await voxhookRequest<{ data: Pipeline[] }>(this, {
					method: 'GET',
					path: '/api/v1/pipelines',
				});
				return body.data.map((pipeline) => ({
					name: `${pipeline.code}${pipeline.default ? ' (default)' : ''}`,
					value: pipeline.code,
					description: [
						pipeline.description,
						pipeline.can_diarize ? 'speaker labels' : 'no speaker labels',
						pipeline.price_per_minute_usd ? `${pipeline.price_per_minute_usd} USD/min` : '',
					]
						.filter(Boolean)
						.join(' · '),
				}));
			},
		},
		credentialTest: {
			/**
			 * `GET /api/v1/me` with the credential: success names the account; a refused key
			 * and a server that cannot be reached give different messages.
			 */
			async voxhookApiTest(
				this: ICredentialTestFunctions,
				credential: ICredentialsDecrypted,
			): Promise<INodeCredentialTestResult> {
				const data = (credential.data ?? {}) as unknown as VoxhookCredentials;
				let base: string;
				try {
					base = baseUrlOf({ name: 'Voxhook' } as never, data);
				} catch (error) {
					return { status: 'Error', message: (error as Error).message };
				}
				let response: { statusCode: number; body: IDataObject };
				try {
					// The credential-test context offers request() only (no httpRequest).
					// eslint-disable-next-line @n8n/community-nodes/no-deprecated-workflow-functions
					response = await this.helpers.request({
						method: 'GET',
						uri: `${base}/api/v1/me`,
						headers: { Authorization: `Bearer ${data.apiKey}` },
						json: true,
						simple: false,
						resolveWithFullResponse: true,
						timeout: 15000,
					});
				} catch (error) {
					return {
						status: 'Error',
						message: `Could not reach Voxhook at ${base}: ${(error as Error).message}`,
					};
				}
				if (response.statusCode === 200) {
					const account = (response.body.account ?? {}) as IDataObject;
					return { status: 'OK', message: `Connected to account "${String(account.name)}"` };
				}
				const detail = ((response.body ?? {}).error ?? {}) as IDataObject;
				if (response.statusCode === 401) {
					return {
						status: 'Error',
						message: `Voxhook at ${base} refused the API key: ${String(detail.message ?? 'unauthorized')}`,
					};
				}
				return {
					status: 'Error',
					message: `Voxhook at ${base} answered HTTP ${response.statusCode}${detail.message ? `: ${String(detail.message)}` : ''} (is this the Voxhook base URL?)`,
				};
			},
		},
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const operation = this.getNodeParameter('operation', 0) as string;
		if (
			operation === 'transcribe' &&
			this.getNodeParameter('waitForCompletion', 0, true) &&
			this.getNodeParameter('waitMode', 0, 'poll') === 'webhook'
		) {
			return await transcribeAndWaitForWebhook.call(this, items);
		}
		const output: INodeExecutionData[] = [];
		for (let itemIndex = 0; itemIndex < items.length; itemIndex++) {
			try {
				output.push(...(await runOperation.call(this, operation, itemIndex)));
			} catch (error) {
				if (this.continueOnFail()) {
					output.push({
						json: { error: (error as Error).message, ...errorContext(error) },
						pairedItem: { item: itemIndex },
					});
					continue;
				}
				throw toNodeError(this.getNode(), error, itemIndex);
			}
		}
		return [output];
	}

	/** Resume on Webhook: Voxhook POSTs the finished transcription (signed) to the resume URL. */
	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const delivery = await verifyDelivery(this);
		if (!delivery.ok) {
			this.getResponseObject().status(401).json({ error: delivery.problem });
			return { noWebhookResponse: true };
		}
		const transcription = delivery.body as Transcription;
		const simplify = this.getNodeParameter('simplify', false) as boolean;
		const json = simplify ? simplifyTranscription(transcription) : (transcription as IDataObject);
		if (transcription.status === 'completed') {
			return { workflowData: [[{ json }]] };
		}
		// n8n resumes a waiting node without running it again, so a failed transcription
		// cannot stop the workflow here: it leaves as an error item (as with "continue on fail").
		return {
			workflowData: [[{ json, error: unfinishedError(this.getNode(), transcription) }]],
		};
	}
}

/** The operations that handle one item at a time. */
async function runOperation(
	this: IExecuteFunctions,
	operation: string,
	itemIndex: number,
): Promise<INodeExecutionData[]> {
	const id = () => {
		const value = String(this.getNodeParameter('transcriptionId', itemIndex, '')).trim();
		if (!value) {
			throw new NodeOperationError(this.getNode(), 'Transcription ID is empty', {
				description: 'Give the id of a transcription (tr_…), e.g. {{ $json.id }}.',
				itemIndex,
			});
		}
		return value;
	};
	switch (operation) {
		case 'transcribe': {
			const created = await createTranscription.call(this, itemIndex);
			if (!this.getNodeParameter('waitForCompletion', itemIndex, true)) {
				return [transcriptionItem.call(this, created, itemIndex)];
			}
			const finished = await waitByPolling.call(this, created, itemIndex);
			return [finishedItem.call(this, finished, itemIndex)];
		}
		case 'get':
			return [
				transcriptionItem.call(this, await getTranscription.call(this, id(), itemIndex), itemIndex),
			];
		case 'getAll':
			return (await listTranscriptions.call(this, itemIndex)).map((transcription) =>
				transcriptionItem.call(this, transcription, itemIndex),
			);
		case 'cancel':
			return [
				{
					json: (await cancelTranscription.call(this, id(), itemIndex)) as IDataObject,
					pairedItem: { item: itemIndex },
				},
			];
		case 'delete':
			return [
				{
					json: await deleteTranscription.call(this, id(), itemIndex),
					pairedItem: { item: itemIndex },
				},
			];
		case 'export': {
			const format = this.getNodeParameter('format', itemIndex) as ExportFormat | 'json';
			return [await exportTranscription.call(this, id(), format, itemIndex)];
		}
		default:
			throw new NodeOperationError(this.getNode(), `Unknown operation "${operation}"`, {
				itemIndex,
			});
	}
}

/**
 * Dispatch and wait: create the transcription with the execution's resume URL as its
 * webhook_url, then put the execution to wait. n8n keeps nothing running meanwhile; Voxhook's
 * POST to that URL resumes the execution through `webhook()`. One waiting point per
 * execution, hence one item.
 */
async function transcribeAndWaitForWebhook(
	this: IExecuteFunctions,
	items: INodeExecutionData[],
): Promise<INodeExecutionData[][]> {
	if (items.length !== 1) {
		throw new NodeOperationError(
			this.getNode(),
			`Resume on Webhook waits for one transcription per execution, and this node received ${items.length} items`,
			{
				description:
					'Use Wait Mode "Poll" for several items, or run one sub-workflow per item (Loop Over Items with Execute Workflow).',
			},
		);
	}
	const resumeUrl = this.getWorkflowDataProxy(0).$execution.resumeUrl as string;
	const limitMinutes = this.getNodeParameter('resumeLimitMinutes', 0, 0) as number;
	const waitTill =
		limitMinutes > 0 ? new Date(Date.now() + limitMinutes * 60_000) : WAIT_INDEFINITELY;
	let created: Transcription;
	try {
		created = await createTranscription.call(this, 0, { webhook_url: resumeUrl });
	} catch (error) {
		if (this.continueOnFail()) {
			return [
				[
					{
						json: { error: (error as Error).message, ...errorContext(error) },
						pairedItem: { item: 0 },
					},
				],
			];
		}
		throw toNodeError(this.getNode(), error, 0);
	}
	if (FINAL_STATUSES.includes(created.status)) {
		// A replay of an earlier request (same Idempotency-Key) that already ended: no
		// webhook will come, so answer now.
		return [[finishedItem.call(this, created, 0)]];
	}
	this.setMetadata({ resumeUrl });
	await this.putExecutionToWait(waitTill);
	return [[{ json: created as IDataObject, pairedItem: { item: 0 } }]];
}

/** What an error item carries besides the message: Voxhook's code and the transcription id. */
function errorContext(error: unknown): IDataObject {
	const context = ((error as { context?: IDataObject }).context ?? {}) as IDataObject;
	const extra: IDataObject = {};
	if (context.voxhookErrorCode) extra.code = context.voxhookErrorCode;
	if (context.transcriptionId) extra.transcriptionId = context.transcriptionId;
	const description = (error as { description?: string }).description;
	if (description) extra.description = description;
	return extra;
}
