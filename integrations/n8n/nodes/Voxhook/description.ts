import type { INodeProperties } from 'n8n-workflow';

import { SIMPLIFY_PROPERTY } from '../shared/properties';
import { LANGUAGE_OPTIONS } from './languages';

const show = (operation: string[], extra: Record<string, Array<string | boolean>> = {}) => ({
	show: { resource: ['transcription'], operation, ...extra },
});

/** Every parameter of the Voxhook node, in the order the editor shows them. */
export const properties: INodeProperties[] = [
	{
		displayName: 'Resource',
		name: 'resource',
		type: 'options',
		noDataExpression: true,
		options: [{ name: 'Transcription', value: 'transcription' }],
		default: 'transcription',
	},
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		displayOptions: { show: { resource: ['transcription'] } },
		options: [
			{
				name: 'Cancel',
				value: 'cancel',
				description: 'Stop a queued or running transcription (nothing is charged)',
				action: 'Cancel a transcription',
			},
			{
				name: 'Delete',
				value: 'delete',
				description: 'Delete a transcription and its media',
				action: 'Delete a transcription',
			},
			{
				name: 'Export',
				value: 'export',
				description: 'Download a completed transcription as SRT, VTT or TXT (a file) or JSON',
				action: 'Export a transcription',
			},
			{
				name: 'Get',
				value: 'get',
				description: 'Get a transcription by ID',
				action: 'Get a transcription',
			},
			{
				name: 'Get Many',
				value: 'getAll',
				description: 'List transcriptions, newest first',
				action: 'Get many transcriptions',
			},
			{
				name: 'Transcribe',
				value: 'transcribe',
				description: 'Transcribe audio or video from a URL or a file, and wait for the result',
				action: 'Transcribe audio',
			},
		],
		default: 'transcribe',
	},

	// ------------------------------------------------------------------ transcribe
	{
		displayName: 'Audio Source',
		name: 'source',
		type: 'options',
		noDataExpression: true,
		displayOptions: show(['transcribe']),
		options: [
			{
				name: 'URL',
				value: 'url',
				description:
					'Voxhook fetches it (direct links and Google Drive, Dropbox or OneDrive sharing links)',
			},
			{
				name: 'Binary File',
				value: 'binary',
				description: 'A file of the incoming item, streamed to Voxhook',
			},
		],
		default: 'url',
	},
	{
		displayName: 'Audio URL',
		name: 'url',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'https://example.com/call.mp3',
		displayOptions: show(['transcribe'], { source: ['url'] }),
		description: 'The audio or video to transcribe',
	},
	{
		displayName: 'Input Binary Field',
		name: 'binaryPropertyName',
		type: 'string',
		required: true,
		default: 'data',
		displayOptions: show(['transcribe'], { source: ['binary'] }),
		hint: 'The name of the input binary field containing the audio or video',
	},
	{
		displayName: 'Wait for Completion',
		name: 'waitForCompletion',
		type: 'boolean',
		default: true,
		displayOptions: show(['transcribe']),
		description:
			'Whether to output the finished transcription (otherwise the node outputs it queued, at once)',
	},
	{
		displayName: 'Wait Mode',
		name: 'waitMode',
		type: 'options',
		noDataExpression: true,
		displayOptions: show(['transcribe'], { waitForCompletion: [true] }),
		options: [
			{
				name: 'Poll',
				value: 'poll',
				description: 'Ask Voxhook every few seconds until it is done, up to a timeout',
			},
			{
				name: 'Resume on Webhook',
				value: 'webhook',
				description:
					'Pause the execution; Voxhook calls n8n back when done. Holds no worker, however long the file. One item per execution.',
			},
		],
		default: 'poll',
	},
	{
		displayName: 'Poll Interval (Seconds)',
		name: 'pollIntervalSeconds',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 5,
		displayOptions: show(['transcribe'], { waitForCompletion: [true], waitMode: ['poll'] }),
	},
	{
		displayName: 'Timeout (Seconds)',
		name: 'timeoutSeconds',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 3600,
		displayOptions: show(['transcribe'], { waitForCompletion: [true], waitMode: ['poll'] }),
		description:
			'How long to wait before failing the item; the transcription keeps running on Voxhook and the error carries its ID',
	},
	{
		displayName: 'Resume Time Limit (Minutes)',
		name: 'resumeLimitMinutes',
		type: 'number',
		typeOptions: { minValue: 0 },
		default: 0,
		displayOptions: show(['transcribe'], { waitForCompletion: [true], waitMode: ['webhook'] }),
		description:
			'0 waits until Voxhook calls back. Otherwise, when the limit passes first, n8n resumes the execution with the input item unchanged, as its Wait node does.',
	},
	{
		displayName: 'Options',
		name: 'transcribeOptions',
		type: 'collection',
		placeholder: 'Add option',
		default: {},
		displayOptions: show(['transcribe']),
		options: [
			{
				displayName: 'Idempotency Key',
				name: 'idempotencyKey',
				type: 'string',
				default: '',
				description:
					'Sent as Idempotency-Key: a repeat with the same key creates nothing new. Empty: derived from the execution ID, this node and the item index, so a retried node creates no second transcription.',
			},
			{
				displayName: 'Language Name or ID',
				name: 'language',
				type: 'options',
				options: LANGUAGE_OPTIONS,
				default: 'auto',
				description:
					'The spoken language; naming it is faster and avoids misdetection on short clips. Choose from the list, or specify an ISO 639-1 code using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			},
			{
				displayName: 'Max Speakers',
				name: 'maxSpeakers',
				type: 'number',
				typeOptions: { minValue: 0, maxValue: 50 },
				default: 0,
				description: 'With Speaker Labels: at most this many speakers (0: no bound)',
			},
			{
				displayName: 'Min Speakers',
				name: 'minSpeakers',
				type: 'number',
				typeOptions: { minValue: 0, maxValue: 50 },
				default: 0,
				description: 'With Speaker Labels: at least this many speakers (0: no bound)',
			},
			{
				displayName: 'Pipeline Name or ID',
				name: 'pipeline',
				type: 'options',
				typeOptions: { loadOptionsMethod: 'getPipelines' },
				default: '',
				description:
					'Which model set runs it (empty: the server\'s default). Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			},
			{
				displayName: 'Speaker Count',
				name: 'speakerCount',
				type: 'number',
				typeOptions: { minValue: 0, maxValue: 50 },
				default: 0,
				description: 'With Speaker Labels: the exact number of speakers, when known (0: unknown)',
			},
			{
				displayName: 'Speaker Labels',
				name: 'diarize',
				type: 'boolean',
				default: false,
				description:
					'Whether to label speakers (SPEAKER 1, SPEAKER 2, …); needs a pipeline that can diarize',
			},
			{
				displayName: 'Webhook URL',
				name: 'webhookUrl',
				type: 'string',
				default: '',
				placeholder: 'https://example.com/hooks/voxhook',
				description:
					'Also POST the finished transcription there (signed). Not used with Resume on Webhook, which sets its own.',
			},
			{
				displayName: 'Word Timestamps',
				name: 'align',
				type: 'boolean',
				default: true,
				description: 'Whether to time every word (always on with Speaker Labels)',
			},
		],
	},

	// ------------------------------------------------------------------ one transcription
	{
		displayName: 'Transcription ID',
		name: 'transcriptionId',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'tr_…',
		displayOptions: show(['get', 'cancel', 'delete', 'export']),
	},
	{
		displayName: 'Format',
		name: 'format',
		type: 'options',
		displayOptions: show(['export']),
		options: [
			{ name: 'JSON', value: 'json', description: 'The transcription as JSON (no file)' },
			{ name: 'SRT Captions', value: 'srt' },
			{
				name: 'Text',
				value: 'txt',
				description: 'Plain text, a paragraph per utterance or speaker turn',
			},
			{ name: 'WebVTT Captions', value: 'vtt' },
		],
		default: 'srt',
	},
	{
		displayName: 'Put Output File in Field',
		name: 'outputBinaryPropertyName',
		type: 'string',
		required: true,
		default: 'data',
		displayOptions: show(['export'], { format: ['srt', 'vtt', 'txt'] }),
		hint: 'The name of the output binary field to put the file in',
	},

	// ------------------------------------------------------------------ get many
	{
		displayName: 'Return All',
		name: 'returnAll',
		type: 'boolean',
		default: false,
		displayOptions: show(['getAll']),
		description: 'Whether to return all results or only up to a given limit',
	},
	{
		displayName: 'Limit',
		name: 'limit',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 50,
		displayOptions: show(['getAll'], { returnAll: [false] }),
		description: 'Max number of results to return',
	},
	{
		displayName: 'Filters',
		name: 'filters',
		type: 'collection',
		placeholder: 'Add filter',
		default: {},
		displayOptions: show(['getAll']),
		options: [
			{
				displayName: 'Created After',
				name: 'createdAfter',
				type: 'dateTime',
				default: '',
				description: 'Only those created at or after this moment',
			},
			{
				displayName: 'Created Before',
				name: 'createdBefore',
				type: 'dateTime',
				default: '',
				description: 'Only those created before this moment',
			},
			{
				displayName: 'Status',
				name: 'status',
				type: 'multiOptions',
				options: [
					{ name: 'Cancelled', value: 'cancelled' },
					{ name: 'Completed', value: 'completed' },
					{ name: 'Failed', value: 'failed' },
					{ name: 'Processing', value: 'processing' },
					{ name: 'Queued', value: 'queued' },
				],
				default: [],
			},
		],
	},

	// ------------------------------------------------------------------ output
	{ ...SIMPLIFY_PROPERTY, displayOptions: show(['transcribe', 'get', 'getAll']) },
];
