'use strict';

/**
 * The REST-hook triggers ("Transcription Completed", "Transcription Failed"): one factory, so
 * both subscribe, verify and list the same way and differ only in their event.
 *
 * Zapier calls performSubscribe when a Zap is turned on (it hands over bundle.targetUrl),
 * performUnsubscribe when it is turned off (with what performSubscribe returned, in
 * bundle.subscribeData), perform for every delivery, and performList for sample data.
 */

const { apiUrl } = require('./api');
const { verifyDelivery } = require('./signature');
const transcription = require('./transcription');

const subscribe = (event) => async (z, bundle) => {
  const response = await z.request({
    url: apiUrl(bundle, '/webhook_endpoints'),
    method: 'POST',
    body: { url: bundle.targetUrl, events: [event], description: `Zapier: ${event}` },
  });
  return response.data; // {id: "we_…", url, events, …}: kept by Zapier as subscribeData
};

const unsubscribe = async (z, bundle) => {
  const id = bundle.subscribeData && bundle.subscribeData.id;
  if (!id) {
    throw new z.errors.Error('This Zap has no Voxhook webhook endpoint to remove.',
      'missing_subscription', 400);
  }
  const response = await z.request({
    url: apiUrl(bundle, `/webhook_endpoints/${encodeURIComponent(id)}`),
    method: 'DELETE',
    skipThrowForStatus: true,
  });
  if (response.status === 404) return { id, deleted: true }; // removed already
  response.throwForStatus();
  return response.data;
};

/** A delivery: refused unless signed by the account's secret; the envelope's transcription. */
const receive = (event) => async (z, bundle) => {
  await verifyDelivery(z, bundle, apiUrl);
  const envelope = bundle.cleanedRequest || {};
  if (envelope.type !== event || !envelope.data) return []; // another event: not this trigger's
  return [envelope.data];
};

const listRecent = (status) => async (z, bundle) => {
  const response = await z.request({
    url: apiUrl(bundle, '/transcriptions'),
    params: { status, limit: 3 },
  });
  return response.data.data;
};

/**
 * @param {{key: string, event: string, status: string, label: string, description: string}} options
 */
const restHookTrigger = ({ key, event, status, label, description }) => ({
  key,
  noun: 'Transcription',
  display: { label, description },
  operation: {
    type: 'hook',
    performSubscribe: subscribe(event),
    performUnsubscribe: unsubscribe,
    perform: receive(event),
    performList: listRecent(status),
    sample: status === 'completed' ? transcription.sample
      : require('../samples/transcription.failed.json'),
    outputFields: transcription.outputFields,
  },
});

module.exports = { restHookTrigger };
