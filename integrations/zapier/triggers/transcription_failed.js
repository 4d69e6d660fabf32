'use strict';

const { restHookTrigger } = require('../lib/rest_hook');

module.exports = restHookTrigger({
  key: 'transcription_failed',
  event: 'transcription.failed',
  status: 'failed',
  label: 'Transcription Failed',
  description: 'Triggers when a transcription of your Voxhook account fails (with the reason).',
});
