'use strict';

const { restHookTrigger } = require('../lib/rest_hook');

module.exports = restHookTrigger({
  key: 'transcription_completed',
  event: 'transcription.completed',
  status: 'completed',
  label: 'Transcription Completed',
  description: 'Triggers when a transcription of your Voxhook account is completed.',
});
