'use strict';

/**
 * "Export Captions": SRT, WebVTT or plain text of a completed transcription, as a file the
 * next steps can attach or upload (dehydrated: Zapier fetches it through the exportFile
 * hydrator only when a step uses it) and as text.
 */

const { exportRequest, stashExport } = require('../hydrators');

const FORMATS = { srt: 'SubRip (.srt)', vtt: 'WebVTT (.vtt)', txt: 'Plain text (.txt)' };

const perform = async (z, bundle) => {
  const { transcription_id: id, format = 'srt' } = bundle.inputData;
  if (!FORMATS[format]) {
    throw new z.errors.Error(`Format must be one of ${Object.keys(FORMATS).join(', ')}; got "${format}".`,
      'invalid_input', 400);
  }
  // Fetched once here so an export that cannot be made (not completed yet, failed, unknown
  // id) stops the step with Voxhook's reason now, not when a later step opens the file.
  const response = await z.request(exportRequest(bundle, id, format));
  return {
    transcription_id: id,
    format,
    filename: `${id}.${format}`,
    content: response.content,
    file: z.dehydrateFile(stashExport, { transcription_id: id, format }),
  };
};

module.exports = {
  key: 'export_captions',
  noun: 'Captions',
  display: { label: 'Export Captions',
    description: 'Exports a completed transcription as SRT or WebVTT captions, or plain text, as a file.' },
  operation: {
    inputFields: [
      { key: 'transcription_id', label: 'Transcription ID', required: true,
        helpText: 'The `tr_…` ID of a completed transcription.' },
      { key: 'format', label: 'Format', required: true, default: 'srt', choices: FORMATS },
    ],
    perform,
    sample: require('../samples/export.srt.json'),
    outputFields: [
      { key: 'transcription_id', label: 'Transcription ID' },
      { key: 'format', label: 'Format' },
      { key: 'filename', label: 'File name' },
      { key: 'content', label: 'Captions (text)' },
      { key: 'file', label: 'Captions file', type: 'file' },
    ],
  },
};
