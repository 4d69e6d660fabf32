import type {
	IDataObject,
	NodeApiError,
	IHookFunctions,
	INodeExecutionData,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';

import { verifyDelivery } from '../shared/delivery';
import { downloadExport } from '../shared/exports';
import { SIMPLIFY_PROPERTY } from '../shared/properties';
import { toNodeError, voxhookRequest } from '../shared/transport';
import { simplifyTranscription } from '../shared/transcriptions';
import type { ExportFormat, WebhookEndpoint, WebhookEnvelope } from '../shared/types';

const ENDPOINTS = '/api/v1/webhook_endpoints';

/** What the trigger keeps between activations, in the workflow's static data. */
interface TriggerState extends IDataObject {
	endpointId?: string;
	secret?: string;
}

export class VoxhookTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Voxhook Trigger',
		name: 'voxhookTrigger',
		icon: { light: 'file:../../icons/voxhook.svg', dark: 'file:../../icons/voxhook.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["events"].join(", ")}}',
		description: 'Starts the workflow when a Voxhook transcription completes or fails',
		defaults: { name: 'Voxhook Trigger' },
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'voxhookApi', required: true }],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: 'webhook',
			},
		],
		properties: [
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				required: true,
				options: [
					{
						name: 'Transcription Completed',
						value: 'transcription.completed',
						description: 'A transcription finished with a result',
					},
					{
						name: 'Transcription Failed',
						value: 'transcription.failed',
						description: 'A transcription ended with an error (its error says why)',
					},
				],
				default: ['transcription.completed'],
			},
			{
				displayName: 'Download Export',
				name: 'download',
				type: 'options',
				options: [
					{ name: 'None', value: 'none' },
					{ name: 'SRT Captions', value: 'srt' },
					{ name: 'Text', value: 'txt' },
					{ name: 'WebVTT Captions', value: 'vtt' },
				],
				default: 'none',
				description:
					'Whether to attach the transcript of a completed transcription as a file (binary field "data")',
			},
			SIMPLIFY_PROPERTY,
		],
	};

	webhookMethods = {
		default: {
			/**
			 * Whether our subscription is still there: the stored endpoint id must exist with
			 * this webhook URL. Anything else (deleted on Voxhook, URL changed) subscribes anew.
			 */
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const state = this.getWorkflowStaticData('node') as TriggerState;
				if (!state.endpointId) return false;
				const url = this.getNodeWebhookUrl('default');
				const { body } = await voxhookRequest<{ data: WebhookEndpoint[] }>(this, {
					method: 'GET',
					path: ENDPOINTS,
				});
				const ours = body.data.find((endpoint) => endpoint.id === state.endpointId);
				if (ours && ours.url === url && sameEvents(ours.events, events(this))) return true;
				delete state.endpointId;
				delete state.secret;
				return false;
			},

			/**
			 * Subscribe this workflow's webhook URL, after removing any older endpoint of the
			 * same URL (left by an activation whose state was lost), and keep its id and the
			 * account's signing secret.
			 */
			async create(this: IHookFunctions): Promise<boolean> {
				const url = this.getNodeWebhookUrl('default') as string;
				const state = this.getWorkflowStaticData('node') as TriggerState;
				const { body: existing } = await voxhookRequest<{ data: WebhookEndpoint[] }>(this, {
					method: 'GET',
					path: ENDPOINTS,
				});
				for (const stale of existing.data.filter((endpoint) => endpoint.url === url)) {
					await deleteEndpoint(this, stale.id);
				}
				const workflow = this.getWorkflow();
				const { body: endpoint } = await voxhookRequest<WebhookEndpoint>(this, {
					method: 'POST',
					path: ENDPOINTS,
					body: {
						url,
						events: events(this),
						description: `n8n workflow ${workflow.id ?? ''} (${this.getNode().name})`.slice(0, 200),
					},
				});
				const { body: secret } = await voxhookRequest<{ secret: string }>(this, {
					method: 'GET',
					path: '/api/v1/webhook_secret',
				});
				state.endpointId = endpoint.id;
				state.secret = secret.secret;
				return true;
			},

			/** Unsubscribe on deactivation; an endpoint already gone counts as removed. */
			async delete(this: IHookFunctions): Promise<boolean> {
				const state = this.getWorkflowStaticData('node') as TriggerState;
				if (state.endpointId) await deleteEndpoint(this, state.endpointId);
				delete state.endpointId;
				delete state.secret;
				return true;
			},
		},
	};

	/**
	 * A delivery: verified on its raw body (Standard Webhooks, 5-minute tolerance, any of the
	 * signatures during a rotation) before anything runs; a bad or missing signature is
	 * answered 401 and starts nothing.
	 */
	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const state = this.getWorkflowStaticData('node') as TriggerState;
		const delivery = await verifyDelivery(this, state.secret);
		if (!delivery.ok) {
			this.getResponseObject()
				.status(401)
				.json({ error: `Refused: ${delivery.problem}` });
			return { noWebhookResponse: true };
		}
		if (delivery.secret !== state.secret) state.secret = delivery.secret;
		const envelope = delivery.body as WebhookEnvelope;
		const wanted = this.getNodeParameter('events', []) as string[];
		if (!wanted.includes(envelope.type) || !envelope.data) {
			return { webhookResponse: { ignored: envelope.type } };
		}
		const simplify = this.getNodeParameter('simplify', false) as boolean;
		const transcription = envelope.data;
		const item: INodeExecutionData = {
			json: {
				event: envelope.type,
				eventTimestamp: envelope.timestamp,
				...(simplify ? simplifyTranscription(transcription) : (transcription as IDataObject)),
			},
		};
		const download = this.getNodeParameter('download', 'none') as ExportFormat | 'none';
		if (download !== 'none' && transcription.status === 'completed') {
			// The event is authentic and must start the workflow even if the file cannot be
			// fetched now (a refusal here would make Voxhook retry a delivery that succeeded).
			try {
				item.binary = { data: await downloadExport(this, transcription.id, download) };
			} catch (error) {
				item.json.exportError = (error as Error).message;
			}
		}
		return { workflowData: [[item]] };
	}
}

function events(context: IHookFunctions): string[] {
	return context.getNodeParameter('events', []) as string[];
}

function sameEvents(left: string[], right: string[]): boolean {
	return [...left].sort().join(',') === [...right].sort().join(',');
}

async function deleteEndpoint(context: IHookFunctions, id: string): Promise<void> {
	try {
		await voxhookRequest(context, {
			method: 'DELETE',
			path: `${ENDPOINTS}/${encodeURIComponent(id)}`,
		});
	} catch (error) {
		if ((error as NodeApiError).httpCode !== '404') throw toNodeError(context.getNode(), error);
	}
}
