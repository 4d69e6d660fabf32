'use strict';

/** "Cancel Transcription": stops a queued or running transcription; nothing is charged. */

const { apiUrl } = require('../lib/api');
const transcription = require('../lib/transcription');

const perform = async (z, bundle) => {
  const id = encodeURIComponent(bundle.inputData.transcription_id);
  const response = await z.request({ url: apiUrl(bundle, `/transcriptions/${id}/cancel`), method: 'POST' });
  return response.data;
};

module.exports = {
  key: 'cancel_transcription',
  noun: 'Transcription',
  display: { label: 'Cancel Transcription',
    description: 'Stops a queued or running transcription (nothing is charged for it).' },
  operation: {
    inputFields: [{ key: 'transcription_id', label: 'Transcription ID', required: true,
      helpText: 'The `tr_…` ID, e.g. from Transcribe Audio or a trigger.' }],
    perform,
    sample: require('../samples/transcription.cancelled.json'),
    outputFields: transcription.outputFields,
  },
};
