import type { IBinaryData, IExecuteFunctions, IWebhookFunctions } from 'n8n-workflow';

import { voxhookRequest } from './transport';
import type { ExportFormat } from './types';
import { EXPORT_FORMATS } from './types';

/**
 * Fetch a completed transcription's export and hand it to n8n's binary store, named as
 * Voxhook names it (`tr_….srt`) with the format's MIME type (exports are small text files).
 */
export async function downloadExport(
	context: IExecuteFunctions | IWebhookFunctions,
	id: string,
	format: ExportFormat,
	itemIndex?: number,
): Promise<IBinaryData> {
	const response = await voxhookRequest<ArrayBuffer>(context, {
		method: 'GET',
		path: `/api/v1/transcriptions/${encodeURIComponent(id)}/export`,
		qs: { format },
		encoding: 'arraybuffer',
		itemIndex,
	});
	const { extension, mimeType } = EXPORT_FORMATS[format];
	const named = /filename="([^"]+)"/.exec(String(response.headers['content-disposition'] ?? ''));
	const fileName = named?.[1] ?? `${id}.${extension}`;
	return await context.helpers.prepareBinaryData(Buffer.from(response.body), fileName, mimeType);
}
