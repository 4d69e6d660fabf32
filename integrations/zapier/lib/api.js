'use strict';

/**
 * How the app talks to a Voxhook server: URLs under the connection's base URL, the API key on
 * Voxhook's own requests only, and Voxhook's JSON errors turned into Zapier errors.
 *
 * The key goes only to requests aimed at the connected server's API: a file from an earlier
 * step is fetched from wherever Zapier keeps it, and a signed upload URL carries its own
 * signature, so neither must ever see the key.
 */

/** The connection's base URL without a trailing slash ("https://voxhook.example.com"). */
const baseUrl = (bundle) => String(bundle.authData.baseUrl || '').trim().replace(/\/+$/, '');

/** An absolute URL of the v1 API: apiUrl(bundle, '/transcriptions'). */
const apiUrl = (bundle, path) => `${baseUrl(bundle)}/api/v1${path}`;

/** Signed upload URLs (PUT /api/v1/uploads/{id}/content?expires=…&signature=…) need no key. */
const isSignedUploadUrl = (url) => /\/api\/v1\/uploads\/[^/]+\/content(\?|$)/.test(url);

/** beforeRequest: the API key, as a Bearer token, on requests to this server's API only. */
const addApiKey = (request, z, bundle) => {
  const url = String(request.url || '');
  const base = baseUrl(bundle);
  if (base && bundle.authData.apiKey && url.startsWith(`${base}/api/`) && !isSignedUploadUrl(url)) {
    request.headers = { ...request.headers, Authorization: `Bearer ${bundle.authData.apiKey}` };
  }
  return request;
};

/** The message a person reads: Voxhook's own, with the offending fields when it names them. */
const describeError = (error, status) => {
  let message = error.message || `Voxhook answered HTTP ${status}.`;
  const fields = error.fields && typeof error.fields === 'object' ? error.fields : null;
  if (fields && Object.keys(fields).length) {
    const details = Object.entries(fields)
      .map(([name, problems]) => `${name}: ${[].concat(problems).join(' ')}`)
      .join('; ');
    message = `${message} (${details})`;
  }
  return message;
};

/**
 * afterResponse: a Voxhook error body ({"error": {"code", "message", "fields"}}) becomes a
 * z.errors.Error carrying Voxhook's code, message and HTTP status, so the Zap history shows
 * what went wrong and what to do. Requests made with skipThrowForStatus handle their own.
 */
const raiseVoxhookErrors = (response, z) => {
  if (response.status < 400 || response.skipThrowForStatus) return response;
  throwVoxhookError(z, response);
  return response;
};

/** Throw Voxhook's error of a response (>= 400) as a z.errors.Error, if it carries one. */
const throwVoxhookError = (z, response) => {
  let body;
  try {
    body = typeof response.content === 'string' ? JSON.parse(response.content) : null;
  } catch (_) {
    body = null; // not JSON: Zapier's own status error follows
  }
  if (body && body.error && body.error.code) {
    throw new z.errors.Error(describeError(body.error, response.status), body.error.code,
      response.status);
  }
};

module.exports = { addApiKey, apiUrl, baseUrl, describeError, isSignedUploadUrl,
  raiseVoxhookErrors, throwVoxhookError };
