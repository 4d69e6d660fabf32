'use strict';

/** Hidden trigger behind the Pipeline dropdown: GET /api/v1/pipelines, one choice each. */

const { apiUrl } = require('../lib/api');

const perform = async (z, bundle) => {
  const response = await z.request({ url: apiUrl(bundle, '/pipelines') });
  return response.data.data.map((pipeline) => ({
    id: pipeline.code,
    name: `${pipeline.code}${pipeline.default ? ' (default)' : ''}` +
      `${pipeline.can_diarize ? ', speaker labels' : ''}, ${pipeline.price_per_minute_usd} USD/min`,
    ...pipeline,
  }));
};

module.exports = {
  key: 'pipelines',
  noun: 'Pipeline',
  display: { label: 'List Pipelines', description: 'The pipelines of the Pipeline dropdown.',
    hidden: true },
  operation: {
    perform,
    sample: { id: 'tiny', name: 'tiny (default), speaker labels, 0.006 USD/min', code: 'tiny' },
    outputFields: [{ key: 'id', label: 'Code' }, { key: 'name', label: 'Name' }],
  },
};
