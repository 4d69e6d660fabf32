import { createHash } from 'crypto';

import type {
	IBinaryData,
	IDataObject,
	IExecuteFunctions,
	IHttpRequestOptions,
	INodeExecutionData,
} from 'n8n-workflow';
import { BINARY_ENCODING, NodeOperationError, sleep } from 'n8n-workflow';

import { downloadExport } from '../shared/exports';
import { voxhookRequest } from '../shared/transport';
import { simplifyTranscription, unfinishedError } from '../shared/transcriptions';
import type { ExportFormat, Transcription } from '../shared/types';
import { FINAL_STATUSES } from '../shared/types';

const TRANSCRIPTIONS = '/api/v1/transcriptions';

/** A page of `GET /api/v1/transcriptions`. */
interface TranscriptionPage {
	data: Transcription[];
	has_more: boolean;
	next_starting_after: string | null;
}

/** The fields of `POST /api/v1/transcriptions` the Transcribe options set. */
export function creationFields(options: IDataObject): IDataObject {
	const fields: IDataObject = {};
	if (options.pipeline) fields.pipeline_code = options.pipeline;
	if (options.language && options.language !== 'auto') fields.language = options.language;
	if (options.align === false) fields.align = false;
	if (options.diarize === true) {
		fields.diarize = true;
		for (const [option, field] of [
			['speakerCount', 'speaker_count'],
			['minSpeakers', 'min_speakers'],
			['maxSpeakers', 'max_speakers'],
		]) {
			const value = Number(options[option] ?? 0);
			if (value > 0) fields[field] = value;
		}
	}
	if (options.webhookUrl) fields.webhook_url = options.webhookUrl;
	return fields;
}

/**
 * The Idempotency-Key of an item: the user's, or one derived from this execution, this node
 * and the item, so that n8n retrying the node (Retry On Fail) gets the first answer back
 * instead of a second transcription. Execution ids restart at 1 with a new n8n database, so
 * the execution is identified by its resume URL too (it carries a random token per execution
 * where n8n makes one) and by the instance id: two n8n instances, or one reinstalled, sharing
 * a Voxhook account never reuse each other's keys.
 */
export function idempotencyKey(
	this: IExecuteFunctions,
	itemIndex: number,
	options: IDataObject,
): string {
	const given = String(options.idempotencyKey ?? '').trim();
	if (given) return given;
	const resumeUrl = String(this.getWorkflowDataProxy(itemIndex).$execution?.resumeUrl ?? '');
	const execution = createHash('sha256')
		.update(
			`${this.getInstanceId()}|${this.getWorkflow().id ?? ''}|${this.getExecutionId()}|${resumeUrl}`,
		)
		.digest('hex')
		.slice(0, 32);
	return `n8n:${execution}:${this.getNode().id}:${itemIndex}`;
}

/**
 * Create one transcription for an item: from a URL (JSON body) or from a binary property
 * (the file itself as the request body, streamed from n8n's binary store when the item only
 * carries an id, as in filesystem mode; the other fields go in the query string).
 */
export async function createTranscription(
	this: IExecuteFunctions,
	itemIndex: number,
	extraFields: IDataObject = {},
): Promise<Transcription> {
	const options = this.getNodeParameter('transcribeOptions', itemIndex, {}) as IDataObject;
	const source = this.getNodeParameter('source', itemIndex) as 'url' | 'binary';
	const fields = { ...creationFields(options), ...extraFields };
	const headers: IDataObject = { 'Idempotency-Key': idempotencyKey.call(this, itemIndex, options) };
	if (source === 'url') {
		const url = String(this.getNodeParameter('url', itemIndex)).trim();
		if (!url) {
			throw new NodeOperationError(this.getNode(), 'Audio URL is empty', {
				description: 'Give the http(s) URL of the audio or video to transcribe.',
				itemIndex,
			});
		}
		const response = await voxhookRequest<Transcription>(this, {
			method: 'POST',
			path: TRANSCRIPTIONS,
			body: { source: 'external_url', url, ...fields },
			headers,
			itemIndex,
		});
		return response.body;
	}
	const propertyName = this.getNodeParameter('binaryPropertyName', itemIndex) as string;
	const binary = this.helpers.assertBinaryData(itemIndex, propertyName);
	const file = await fileBody.call(this, binary);
	const response = await voxhookRequest<Transcription>(this, {
		method: 'POST',
		path: TRANSCRIPTIONS,
		qs: fields,
		body: file.body,
		headers: {
			...headers,
			'Content-Type': binary.mimeType || 'application/octet-stream',
			'Content-Length': String(file.size),
			'Content-Disposition': contentDisposition(binary.fileName ?? 'audio'),
		},
		itemIndex,
	});
	return response.body;
}

/**
 * The request body for a binary property and its size. With n8n's filesystem (or S3) binary
 * mode the item holds an id and the bytes are streamed from the store, never loaded whole;
 * in the default mode the bytes are already in the item (base64), so they are decoded once.
 */
async function fileBody(
	this: IExecuteFunctions,
	binary: IBinaryData,
): Promise<{ body: IHttpRequestOptions['body']; size: number }> {
	if (binary.id) {
		const metadata = await this.helpers.getBinaryMetadata(binary.id);
		const stream = await this.helpers.getBinaryStream(binary.id);
		return { body: stream as unknown as IHttpRequestOptions['body'], size: metadata.fileSize };
	}
	const bytes = Buffer.from(binary.data, BINARY_ENCODING);
	return { body: bytes, size: bytes.length };
}

/** `attachment; filename=…` with an ASCII fallback and the exact name in RFC 5987 form. */
function contentDisposition(fileName: string): string {
	const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_');
	return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName)}`;
}

export async function getTranscription(
	this: IExecuteFunctions,
	id: string,
	itemIndex: number,
): Promise<Transcription> {
	const response = await voxhookRequest<Transcription>(this, {
		method: 'GET',
		path: `${TRANSCRIPTIONS}/${encodeURIComponent(id)}`,
		itemIndex,
	});
	return response.body;
}

/**
 * Poll until the transcription is completed, failed or cancelled, sleeping with n8n's own
 * `sleep` between tries (the execution can still be cancelled meanwhile). Past the timeout,
 * an error that carries the transcription's id: it keeps running on Voxhook.
 */
export async function waitByPolling(
	this: IExecuteFunctions,
	created: Transcription,
	itemIndex: number,
): Promise<Transcription> {
	const intervalS = Math.max(
		1,
		this.getNodeParameter('pollIntervalSeconds', itemIndex, 5) as number,
	);
	const timeoutS = this.getNodeParameter('timeoutSeconds', itemIndex, 3600) as number;
	const deadline = Date.now() + timeoutS * 1000;
	let transcription = created;
	while (!FINAL_STATUSES.includes(transcription.status)) {
		const left = deadline - Date.now();
		if (left <= 0) {
			const error = new NodeOperationError(
				this.getNode(),
				`Transcription ${transcription.id} did not finish within ${timeoutS} s (it is ${transcription.status})`,
				{
					description:
						'It keeps running on Voxhook: get it later with the Get operation and this ID, raise the timeout, or use Resume on Webhook for long files.',
					itemIndex,
				},
			);
			error.context.transcriptionId = transcription.id;
			throw error;
		}
		await sleep(Math.min(intervalS * 1000, left));
		transcription = await getTranscription.call(this, transcription.id, itemIndex);
	}
	return transcription;
}

/** The output item of a finished transcription: an error when it did not complete. */
export function finishedItem(
	this: IExecuteFunctions,
	transcription: Transcription,
	itemIndex: number,
): INodeExecutionData {
	if (transcription.status === 'failed' || transcription.status === 'cancelled') {
		throw unfinishedError(this.getNode(), transcription, itemIndex);
	}
	return transcriptionItem.call(this, transcription, itemIndex);
}

export function transcriptionItem(
	this: IExecuteFunctions,
	transcription: Transcription,
	itemIndex: number,
): INodeExecutionData {
	const simplify = this.getNodeParameter('simplify', itemIndex, false) as boolean;
	return {
		json: simplify ? simplifyTranscription(transcription) : (transcription as IDataObject),
		pairedItem: { item: itemIndex },
	};
}

/** Get Many: follow `next_starting_after` until the limit or the last page. */
export async function listTranscriptions(
	this: IExecuteFunctions,
	itemIndex: number,
): Promise<Transcription[]> {
	const returnAll = this.getNodeParameter('returnAll', itemIndex, false) as boolean;
	const limit = returnAll ? Infinity : (this.getNodeParameter('limit', itemIndex, 50) as number);
	const filters = this.getNodeParameter('filters', itemIndex, {}) as IDataObject;
	const qs: IDataObject = {};
	const statuses = (filters.status as string[] | undefined) ?? [];
	if (statuses.length) qs.status = statuses.join(',');
	if (filters.createdAfter) qs.created_after = filters.createdAfter;
	if (filters.createdBefore) qs.created_before = filters.createdBefore;
	const found: Transcription[] = [];
	for (;;) {
		qs.limit = Math.min(100, limit - found.length);
		const { body } = await voxhookRequest<TranscriptionPage>(this, {
			method: 'GET',
			path: TRANSCRIPTIONS,
			qs,
			itemIndex,
		});
		found.push(...body.data);
		if (!body.has_more || !body.next_starting_after || found.length >= limit) break;
		qs.starting_after = body.next_starting_after;
	}
	return found.slice(0, limit);
}

export async function cancelTranscription(this: IExecuteFunctions, id: string, itemIndex: number) {
	const { body } = await voxhookRequest<Transcription>(this, {
		method: 'POST',
		path: `${TRANSCRIPTIONS}/${encodeURIComponent(id)}/cancel`,
		itemIndex,
	});
	return body;
}

export async function deleteTranscription(this: IExecuteFunctions, id: string, itemIndex: number) {
	const { body } = await voxhookRequest<IDataObject>(this, {
		method: 'DELETE',
		path: `${TRANSCRIPTIONS}/${encodeURIComponent(id)}`,
		itemIndex,
	});
	return body;
}

/**
 * Export: SRT, VTT or TXT as a binary file named as Voxhook names it (`tr_….srt`) with its
 * MIME type, or the JSON body.
 */
export async function exportTranscription(
	this: IExecuteFunctions,
	id: string,
	format: ExportFormat | 'json',
	itemIndex: number,
): Promise<INodeExecutionData> {
	const path = `${TRANSCRIPTIONS}/${encodeURIComponent(id)}/export`;
	if (format === 'json') {
		const { body } = await voxhookRequest<IDataObject>(this, {
			method: 'GET',
			path,
			qs: { format },
			itemIndex,
		});
		return { json: body, pairedItem: { item: itemIndex } };
	}
	const file = await downloadExport(this, id, format, itemIndex);
	const property = this.getNodeParameter('outputBinaryPropertyName', itemIndex, 'data') as string;
	return {
		json: { id, format, fileName: file.fileName },
		binary: { [property]: file },
		pairedItem: { item: itemIndex },
	};
}
