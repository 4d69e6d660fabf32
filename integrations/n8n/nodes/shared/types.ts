/** A word of a transcript (present when word timestamps are on). */
export interface Word {
	word: string;
	start: number;
	end: number;
	confidence: number;
	speaker?: string | null;
}

/** An utterance: a sentence or a speaker turn. */
export interface Utterance {
	start: number;
	end: number;
	text: string;
	speaker?: string | null;
	confidence: number;
	words?: Word[];
}

/** `GET /api/v1/transcriptions/{id}` (only the fields the nodes read are typed). */
export interface Transcription {
	id: string;
	object: 'transcription';
	status: 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';
	audio_duration_seconds?: number | null;
	error?: { code: string; message: string } | null;
	result?: {
		full_transcript: string;
		language: string;
		duration_seconds: number;
		speakers: string[];
		utterances: Utterance[];
	} | null;
	[key: string]: unknown;
}

/** The statuses after which nothing changes any more. */
export const FINAL_STATUSES: ReadonlyArray<Transcription['status']> = [
	'completed',
	'failed',
	'cancelled',
];

/** A subscription (`/api/v1/webhook_endpoints`). */
export interface WebhookEndpoint {
	id: string;
	url: string;
	events: string[];
}

/** Standard Webhooks envelope of a subscription delivery. */
export interface WebhookEnvelope {
	type: string;
	timestamp: string;
	data: Transcription;
}

/** The export formats Voxhook renders, with the file type n8n should show. */
export const EXPORT_FORMATS = {
	srt: { extension: 'srt', mimeType: 'application/x-subrip' },
	vtt: { extension: 'vtt', mimeType: 'text/vtt' },
	txt: { extension: 'txt', mimeType: 'text/plain' },
} as const;

export type ExportFormat = keyof typeof EXPORT_FORMATS;
