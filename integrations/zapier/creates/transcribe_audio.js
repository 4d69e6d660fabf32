'use strict';

/**
 * "Transcribe Audio": from a URL, or from a file of an earlier step (streamed to a signed
 * upload URL, never held whole in memory). With "Wait for the transcript" on, the step hands
 * Zapier's callback URL to Voxhook as webhook_url and pauses; Voxhook POSTs the finished
 * transcription there and performResume returns it, so the next step gets the text.
 */

const crypto = require('node:crypto');

const { apiUrl } = require('../lib/api');
const { verifyDelivery } = require('../lib/signature');
const transcription = require('../lib/transcription');

const SPEAKER_FIELDS = ['speaker_count', 'min_speakers', 'max_speakers'];

/** Ask for an upload, then PUT the file's bytes to its signed URL as they arrive. */
const uploadFile = async (z, bundle, fileUrl) => {
  const source = await z.request({ url: fileUrl, method: 'GET', raw: true });
  if (source.status >= 400) {
    throw new z.errors.Error(`Could not read the file from the earlier step: its URL answered HTTP ${source.status}.`,
      'file_unreadable', source.status);
  }
  const filename = bundle.inputData.filename || undefined;
  const upload = await z.request({
    url: apiUrl(bundle, '/uploads'),
    method: 'POST',
    body: { ...(filename ? { filename } : {}) },
  });
  const headers = {
    'Content-Type': source.headers.get('content-type') || 'application/octet-stream',
  };
  const length = source.headers.get('content-length');
  if (length) headers['Content-Length'] = length;
  const sent = await z.request({
    url: upload.data.upload_url,
    method: upload.data.method || 'PUT',
    body: source.body, // a stream: piped through, chunk by chunk
    headers,
  });
  return sent.data.id;
};

/** The request body from the step's fields; only what the user filled in. */
const transcriptionBody = (inputData) => {
  const body = {};
  if (inputData.language && inputData.language !== 'auto') body.language = inputData.language;
  if (inputData.pipeline_code) body.pipeline_code = inputData.pipeline_code;
  if (inputData.diarize !== undefined && inputData.diarize !== null) body.diarize = inputData.diarize;
  if (inputData.align !== undefined && inputData.align !== null) body.align = inputData.align;
  for (const field of SPEAKER_FIELDS) {
    if (inputData[field] !== undefined && inputData[field] !== null && inputData[field] !== '') {
      body[field] = inputData[field];
    }
  }
  return body;
};

const perform = async (z, bundle) => {
  const { audio_url: audioUrl, file } = bundle.inputData;
  if (Boolean(audioUrl) === Boolean(file)) {
    throw new z.errors.Error(
      'Give either "Audio URL" or "Audio File" (a file from an earlier step), not both and not neither.',
      'invalid_input', 400);
  }
  const body = transcriptionBody(bundle.inputData);
  if (audioUrl) {
    Object.assign(body, { source: 'external_url', url: audioUrl });
  } else {
    Object.assign(body, { source: 'upload', upload_id: await uploadFile(z, bundle, file) });
  }
  const headers = {};
  if (bundle.inputData.wait_for_transcript !== false) {
    body.webhook_url = z.generateCallbackUrl();
    // The callback URL is unique to this run of this step: a retry sends the same key and
    // gets the same transcription instead of a second one.
    headers['Idempotency-Key'] = `zapier-${crypto.createHash('sha256')
      .update(body.webhook_url).update(JSON.stringify(body)).digest('hex').slice(0, 48)}`;
  }
  const response = await z.request({
    url: apiUrl(bundle, '/transcriptions'), method: 'POST', body, headers,
  });
  return response.data;
};

/**
 * Voxhook POSTed the finished transcription to the callback URL: check it is signed by the
 * account, then hand it on (a failed one stops the Zap with Voxhook's reason).
 */
const performResume = async (z, bundle) => {
  await verifyDelivery(z, bundle, apiUrl);
  const finished = bundle.cleanedRequest || {};
  if (finished.status === 'failed') {
    const error = finished.error || {};
    throw new z.errors.Error(`The transcription failed: ${error.message || 'no reason given'}`,
      error.code || 'transcription_failed', 422);
  }
  return { ...bundle.outputData, ...finished };
};

module.exports = {
  key: 'transcribe_audio',
  noun: 'Transcription',
  display: {
    label: 'Transcribe Audio',
    description: 'Transcribes an audio or video file (a URL or a file from an earlier step), and waits for the transcript.',
  },
  operation: {
    inputFields: [
      { key: 'audio_url', label: 'Audio URL', type: 'string',
        helpText: 'A direct link, or a Google Drive, Dropbox or OneDrive sharing link. Leave empty when you give a file.' },
      { key: 'file', label: 'Audio File', type: 'file',
        helpText: 'A file from an earlier step (instead of a URL). It is streamed to your Voxhook server.' },
      { key: 'filename', label: 'File Name', type: 'string', required: false,
        helpText: 'Shown in Voxhook for an uploaded file (optional).' },
      { key: 'language', label: 'Language', type: 'string', default: 'auto',
        helpText: 'ISO 639-1 code such as `en` or `de`, or `auto` to detect. Giving it is faster and avoids misdetection.' },
      { key: 'pipeline_code', label: 'Pipeline', dynamic: 'pipelines.id.name', required: false,
        helpText: 'Which model set to run; empty for the server\'s default.' },
      { key: 'diarize', label: 'Label Speakers', type: 'boolean', default: 'false',
        helpText: 'Label who speaks when (needs a pipeline with speaker labels).' },
      { key: 'speaker_count', label: 'Number of Speakers', type: 'integer', required: false,
        helpText: 'Exact number of speakers, when known (only with speaker labels).' },
      { key: 'min_speakers', label: 'Minimum Speakers', type: 'integer', required: false },
      { key: 'max_speakers', label: 'Maximum Speakers', type: 'integer', required: false },
      { key: 'align', label: 'Word Timings', type: 'boolean', default: 'true',
        helpText: 'Word-level timestamps (always on with speaker labels).' },
      { key: 'wait_for_transcript', label: 'Wait for the Transcript', type: 'boolean', default: 'true',
        helpText: 'Yes: this step finishes when the transcript is ready and the next steps get its text. No: it finishes at once with the queued transcription.' },
    ],
    perform,
    performResume,
    sample: transcription.sample,
    outputFields: transcription.outputFields,
  },
};
