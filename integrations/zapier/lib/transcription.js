'use strict';

/**
 * What every step that answers a transcription shares: its output fields (labels for the
 * Zap editor, in Zapier's "parent__child" notation for nested values) and its sample, a real
 * answer of GET /api/v1/transcriptions/{id} recorded from a Voxhook server.
 */

const sample = require('../samples/transcription.completed.json');

const outputFields = [
  { key: 'id', label: 'Transcription ID' },
  { key: 'status', label: 'Status (queued, processing, completed, failed, cancelled)' },
  { key: 'result__full_transcript', label: 'Transcript' },
  { key: 'result__language', label: 'Language' },
  { key: 'result__duration_seconds', label: 'Duration (seconds)', type: 'number' },
  { key: 'result__speakers', label: 'Speakers', list: true },
  { key: 'result__utterances[]text', label: 'Utterance text' },
  { key: 'result__utterances[]start', label: 'Utterance start (seconds)', type: 'number' },
  { key: 'result__utterances[]end', label: 'Utterance end (seconds)', type: 'number' },
  { key: 'result__utterances[]speaker', label: 'Utterance speaker' },
  { key: 'audio_duration_seconds', label: 'Audio duration (seconds)', type: 'number' },
  { key: 'cost_usd', label: 'Cost (USD)' },
  { key: 'error__code', label: 'Error code' },
  { key: 'error__message', label: 'Error message' },
  { key: 'source', label: 'Source (external_url or upload)' },
  { key: 'url', label: 'Audio URL' },
  { key: 'upload_id', label: 'Upload ID' },
  { key: 'pipeline_code', label: 'Pipeline' },
  { key: 'language', label: 'Requested language' },
  { key: 'diarize', label: 'Speaker labels requested', type: 'boolean' },
  { key: 'speaker_count', label: 'Speaker count', type: 'integer' },
  { key: 'min_speakers', label: 'Minimum speakers', type: 'integer' },
  { key: 'max_speakers', label: 'Maximum speakers', type: 'integer' },
  { key: 'webhook_url', label: 'Webhook URL' },
  { key: 'created_at', label: 'Created at', type: 'datetime' },
  { key: 'started_at', label: 'Started at', type: 'datetime' },
  { key: 'completed_at', label: 'Completed at', type: 'datetime' },
];

module.exports = { outputFields, sample };
