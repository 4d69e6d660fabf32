import type { INodeProperties } from 'n8n-workflow';

/** "Simplify", shared by the action node and the trigger (see simplifyTranscription). */
export const SIMPLIFY_PROPERTY: INodeProperties = {
	displayName: 'Simplify',
	name: 'simplify',
	type: 'boolean',
	default: false,
	description:
		'Whether to return only ID, status, text, language, duration, speakers and utterances (without word arrays) instead of the full transcription',
};
