'use strict';

/** "Find Transcription" by ID: none found is an empty result, as Zapier searches expect. */

const { apiUrl, throwVoxhookError } = require('../lib/api');
const transcription = require('../lib/transcription');

const perform = async (z, bundle) => {
  const id = encodeURIComponent(String(bundle.inputData.transcription_id || '').trim());
  const response = await z.request({
    url: apiUrl(bundle, `/transcriptions/${id}`), skipThrowForStatus: true,
  });
  if (response.status === 404) return [];
  if (response.status >= 400) {
    throwVoxhookError(z, response);
    response.throwForStatus();
  }
  return [response.data];
};

module.exports = {
  key: 'find_transcription',
  noun: 'Transcription',
  display: { label: 'Find Transcription', description: 'Finds a transcription by its ID.' },
  operation: {
    inputFields: [{ key: 'transcription_id', label: 'Transcription ID', required: true,
      helpText: 'The `tr_…` ID.' }],
    perform,
    sample: transcription.sample,
    outputFields: transcription.outputFields,
  },
};
