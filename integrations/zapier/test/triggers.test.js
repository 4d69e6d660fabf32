'use strict';

/**
 * REST hooks end to end: subscribing creates a Voxhook webhook endpoint aimed at a loopback
 * receiver (Zapier's hook URL), a real transcription's signed delivery reaches it and passes
 * `perform`, a forged or altered one is refused, unsubscribing removes the endpoint.
 */

const test = require('node:test');
const assert = require('node:assert/strict');

const { App, tester } = require('./support/zapier');
const { MEDIA_URL, api, asZapierRequest, authData, deliveryAbout, finishedTranscription, startReceiver } =
  require('./support/live');

const completed = App.triggers.transcription_completed.operation;
const failed = App.triggers.transcription_failed.operation;

test('Transcription Completed: subscribe, a real delivery passes perform, forgeries are refused, unsubscribe', async () => {
  const receiver = await startReceiver();
  try {
    const subscribeData = await tester(completed.performSubscribe,
      { authData: authData(), targetUrl: receiver.url('/hooks/standard/1/abc') });
    assert.match(subscribeData.id, /^we_/);
    assert.deepEqual(subscribeData.events, ['transcription.completed']);
    const endpoint = await api('GET', `/webhook_endpoints/${subscribeData.id}`);
    assert.equal(endpoint.body.url, receiver.url('/hooks/standard/1/abc'));

    const done = await finishedTranscription('jfk.flac');
    assert.equal(done.status, 'completed');
    const delivery = await deliveryAbout(receiver, done.id);
    const zapierRequest = asZapierRequest(delivery);
    const items = await tester(completed.perform, { authData: authData(), subscribeData, ...zapierRequest });
    assert.equal(items.length, 1);
    assert.equal(items[0].id, done.id);
    assert.equal(items[0].status, 'completed');
    assert.equal(items[0].result.full_transcript, done.result.full_transcript);

    // The same body with a changed transcript: the signature no longer matches.
    const altered = JSON.parse(zapierRequest.rawRequest.content);
    altered.data.result.full_transcript = 'Send the money to account 123.';
    const alteredContent = JSON.stringify(altered);
    await assert.rejects(tester(completed.perform, { authData: authData(), subscribeData,
      cleanedRequest: altered, rawRequest: { ...zapierRequest.rawRequest, content: alteredContent } }),
    /does not match the account's signing secret/);

    // No signature headers at all (anyone who learnt the hook URL could POST this).
    await assert.rejects(tester(completed.perform, { authData: authData(), subscribeData,
      cleanedRequest: zapierRequest.cleanedRequest,
      rawRequest: { ...zapierRequest.rawRequest, headers: { 'Http-Content-Type': 'application/json' } } }),
    /no webhook-id, webhook-timestamp and webhook-signature/);

    // A replay of the genuine delivery, long after: too old.
    const stale = { ...zapierRequest.rawRequest.headers, 'Http-Webhook-Timestamp': String(Math.floor(Date.now() / 1000) - 3600) };
    await assert.rejects(tester(completed.perform, { authData: authData(), subscribeData,
      cleanedRequest: zapierRequest.cleanedRequest, rawRequest: { ...zapierRequest.rawRequest, headers: stale } }),
    /not within 300 s of now/);

    await tester(completed.performUnsubscribe, { authData: authData(), subscribeData });
    assert.equal((await api('GET', `/webhook_endpoints/${subscribeData.id}`)).status, 404);
    // Unsubscribing again (Zapier retries) is not an error.
    await tester(completed.performUnsubscribe, { authData: authData(), subscribeData });
  } finally {
    await receiver.close();
  }
});

test('after a secret rotation, deliveries (signed by both secrets) still verify', async () => {
  const receiver = await startReceiver();
  try {
    const subscribeData = await tester(completed.performSubscribe,
      { authData: authData(), targetUrl: receiver.url('/rotated') });
    const rotated = await api('POST', '/webhook_secret/rotate');
    assert.ok(rotated.body.previous_valid_until);
    const done = await finishedTranscription('jfk.flac');
    const delivery = await deliveryAbout(receiver, done.id);
    assert.equal(delivery.headers['webhook-signature'].split(' ').length, 2);
    const items = await tester(completed.perform, { authData: authData(), subscribeData, ...asZapierRequest(delivery) });
    assert.equal(items[0].id, done.id);
    await tester(completed.performUnsubscribe, { authData: authData(), subscribeData });
  } finally {
    await receiver.close();
  }
});

test('Transcription Failed: a file that is not audio is delivered with its reason', async () => {
  const receiver = await startReceiver();
  try {
    const subscribeData = await tester(failed.performSubscribe,
      { authData: authData(), targetUrl: receiver.url('/failed') });
    assert.deepEqual(subscribeData.events, ['transcription.failed']);
    const created = await api('POST', '/transcriptions', { source: 'external_url', url: `${MEDIA_URL}/notes.txt` });
    const delivery = await deliveryAbout(receiver, created.body.id);
    const items = await tester(failed.perform, { authData: authData(), subscribeData, ...asZapierRequest(delivery) });
    assert.equal(items[0].id, created.body.id);
    assert.equal(items[0].status, 'failed');
    assert.equal(items[0].error.code, 'not_audio');
    // A completed event reaching the failed trigger's URL is not its event.
    const envelope = asZapierRequest(delivery);
    assert.deepEqual(await tester(completed.perform, { authData: authData(), subscribeData, ...envelope }), []);
    await tester(failed.performUnsubscribe, { authData: authData(), subscribeData });
  } finally {
    await receiver.close();
  }
});

test('performList gives recent transcriptions of the trigger\'s status as sample data', async () => {
  await finishedTranscription('jfk.flac');
  const recent = await tester(completed.performList, { authData: authData() });
  assert.ok(recent.length >= 1 && recent.length <= 3);
  assert.ok(recent.every((item) => item.status === 'completed' && item.id.startsWith('tr_')));
  const recentFailed = await tester(failed.performList, { authData: authData() });
  assert.ok(recentFailed.every((item) => item.status === 'failed'));
});
