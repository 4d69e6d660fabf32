import type { IDataObject, INode } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import type { Transcription } from './types';

/**
 * The short form of a transcription ("Simplify"): what most workflows use, without the word
 * arrays that make a long transcript's JSON large.
 */
export function simplifyTranscription(transcription: Transcription): IDataObject {
	const result = transcription.result;
	return {
		id: transcription.id,
		status: transcription.status,
		text: result?.full_transcript ?? null,
		language: result?.language ?? null,
		duration: result?.duration_seconds ?? transcription.audio_duration_seconds ?? null,
		speakers: result?.speakers ?? [],
		utterances: (result?.utterances ?? []).map((utterance) => {
			const short: IDataObject = { ...utterance };
			delete short.words;
			return short;
		}),
		error: transcription.error ?? null,
	};
}

/**
 * The error for a transcription that ended without a result: it names the transcription, and
 * Voxhook's error code and message (what to do about it), so the item shows why.
 */
export function unfinishedError(
	node: INode,
	transcription: Transcription,
	itemIndex?: number,
): NodeOperationError {
	const code = transcription.error?.code ?? transcription.status;
	const reason =
		transcription.status === 'cancelled'
			? 'was cancelled'
			: `failed: ${transcription.error?.message ?? 'no reason given'}`;
	const error = new NodeOperationError(
		node,
		`Transcription ${transcription.id} ${reason} [${code}]`,
		{
			description: `GET /api/v1/transcriptions/${transcription.id} shows it; error code: ${code}`,
			itemIndex,
		},
	);
	error.context.transcriptionId = transcription.id;
	error.context.voxhookErrorCode = code;
	return error;
}
