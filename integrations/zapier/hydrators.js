'use strict';

/**
 * Hydrators: what Zapier runs when a later step opens a dehydrated file (z.dehydrateFile).
 * Export Captions hands over the file this way, so the export is fetched and stored with
 * Zapier only when a step actually uses the file.
 */

const { apiUrl } = require('./lib/api');

/** GET /api/v1/transcriptions/{id}/export?format=… */
const exportRequest = (bundle, id, format) => ({
  url: apiUrl(bundle, `/transcriptions/${encodeURIComponent(id)}/export`),
  params: { format },
});

/** Fetch the export and stash it with Zapier; answers the stored file's URL. */
const stashExport = async (z, bundle) => {
  const { transcription_id: id, format } = bundle.inputData;
  const response = await z.request(exportRequest(bundle, id, format));
  return z.stashFile(response.content, Buffer.byteLength(response.content),
    `${id}.${format}`, response.headers.get('content-type') || 'text/plain');
};

module.exports = { exportRequest, stashExport };
