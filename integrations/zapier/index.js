'use strict';

/** The Voxhook app for Zapier: its definition, assembled from one file per step. */

const { version } = require('./package.json');
const { version: platformVersion } = require('zapier-platform-core');

const authentication = require('./authentication');
const { addApiKey, raiseVoxhookErrors } = require('./lib/api');
const { stashExport } = require('./hydrators');
const transcriptionCompleted = require('./triggers/transcription_completed');
const transcriptionFailed = require('./triggers/transcription_failed');
const pipelines = require('./triggers/pipelines');
const transcribeAudio = require('./creates/transcribe_audio');
const exportCaptions = require('./creates/export_captions');
const cancelTranscription = require('./creates/cancel_transcription');
const findTranscription = require('./searches/find_transcription');

module.exports = {
  version,
  platformVersion,
  authentication,
  beforeRequest: [addApiKey],
  afterResponse: [raiseVoxhookErrors],
  hydrators: { exportFile: stashExport },
  triggers: {
    [transcriptionCompleted.key]: transcriptionCompleted,
    [transcriptionFailed.key]: transcriptionFailed,
    [pipelines.key]: pipelines,
  },
  creates: {
    [transcribeAudio.key]: transcribeAudio,
    [exportCaptions.key]: exportCaptions,
    [cancelTranscription.key]: cancelTranscription,
  },
  searches: {
    [findTranscription.key]: findTranscription,
  },
};
