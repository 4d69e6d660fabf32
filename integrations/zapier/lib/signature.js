'use strict';

/**
 * Standard Webhooks verification of what Voxhook POSTs (subscription events and a
 * transcription's own webhook_url): the HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}"
 * under the account's secret (whsec_…), over the raw body exactly as received.
 */

const crypto = require('node:crypto');

/** How old a delivery may be, in seconds, before it is taken for a replay. */
const TOLERANCE_S = 300;

/**
 * A header of a received request, whatever the spelling: Node gives lower-case names, Zapier's
 * bundle.rawRequest gives "Http-Webhook-Id" (its "Http-" prefix, title case).
 */
const headerOf = (headers, name) => {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers || {})) {
    const plain = key.toLowerCase().replace(/^http[-_]/, '').replace(/_/g, '-');
    if (plain === wanted) return Array.isArray(value) ? value.join(' ') : String(value);
  }
  return undefined;
};

/**
 * Why a delivery does not verify, or null when it does.
 *
 * @param {string} secret whsec_… from GET /api/v1/webhook_secret
 * @param {object} headers the request's headers (any spelling, see headerOf)
 * @param {string|Buffer} body the raw body, byte for byte
 * @param {number} nowS the current time in Unix seconds
 */
const signatureProblem = (secret, headers, body, nowS = Date.now() / 1000) => {
  const id = headerOf(headers, 'webhook-id');
  const timestamp = headerOf(headers, 'webhook-timestamp');
  const signatures = headerOf(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    return 'it carries no webhook-id, webhook-timestamp and webhook-signature headers';
  }
  if (!/^\d+$/.test(timestamp) || Math.abs(nowS - Number(timestamp)) > TOLERANCE_S) {
    return `its webhook-timestamp (${timestamp}) is not within ${TOLERANCE_S} s of now`;
  }
  if (body === undefined || body === null) return 'its raw body is missing';
  const key = Buffer.from(String(secret).replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key)
    .update(`${id}.${timestamp}.`).update(body).digest();
  const matches = signatures.split(' ').some((signature) => {
    if (!signature.startsWith('v1,')) return false;
    const given = Buffer.from(signature.slice(3), 'base64');
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
  return matches ? null : 'its webhook-signature does not match the account\'s signing secret';
};

/**
 * Check a request Zapier received for this app (bundle.rawRequest) against the account's
 * current signing secret, fetched from the server (a rotation keeps the previous secret
 * signing too, so the current one always verifies). Throws a z.errors.Error when it fails.
 */
const verifyDelivery = async (z, bundle, apiUrl) => {
  const raw = bundle.rawRequest || {};
  const response = await z.request({ url: apiUrl(bundle, '/webhook_secret'), method: 'GET' });
  const problem = signatureProblem(response.data.secret, raw.headers, raw.content);
  if (problem) {
    throw new z.errors.Error(`Refused a delivery that does not come from your Voxhook server: ${problem}.`,
      'invalid_webhook_signature', 401);
  }
};

module.exports = { TOLERANCE_S, headerOf, signatureProblem, verifyDelivery };
