/**
 * Errors the proxy answers itself, in Voxhook's own shape, so a caller handles one shape
 * whether Voxhook or the edge refused: `{"error": {"code", "message", "fields"?}}`.
 * Voxhook's own errors are never rewritten; they pass through as they are.
 */

/** Every code the edge itself answers with, and its HTTP status. */
export const EDGE_ERRORS = {
  /** No caller token, or one that matches no caller. */
  invalid_caller_token: 401,
  /** A path the proxy does not forward (admin, keys, the webhook secret, anything unknown). */
  route_not_proxied: 404,
  /** A CORS preflight or request from a browser origin not on ALLOWED_ORIGINS. */
  origin_not_allowed: 403,
  /** The request body is over the caller's max_upload_bytes. */
  file_too_large: 413,
  /** The caller used up its requests for this period. */
  rate_limited: 429,
  /** Voxhook could not be reached (refused, reset, DNS). */
  origin_unreachable: 502,
  /** A verified webhook could not be handed to its destination; Voxhook will retry. */
  relay_destination_failed: 502,
  /** Voxhook did not start answering within ORIGIN_TIMEOUT_MS. */
  origin_timeout: 504,
  /** A webhook delivery whose signature, id or timestamp does not verify. */
  invalid_webhook_signature: 401,
  /** The proxy lacks a setting it needs (a secret not set, no relay destination). */
  edge_misconfigured: 503,
} as const;

export type EdgeErrorCode = keyof typeof EDGE_ERRORS;

/** A JSON error response in Voxhook's shape. */
export function edgeError(code: EdgeErrorCode, message: string,
                          options: { fields?: Record<string, string[]>;
                                     headers?: HeadersInit } = {}): Response {
  const error: Record<string, unknown> = { code, message };
  if (options.fields) error.fields = options.fields;
  const headers = new Headers(options.headers);
  headers.set("Content-Type", "application/json");
  headers.set("Cache-Control", "no-store");
  return new Response(JSON.stringify({ error }), { status: EDGE_ERRORS[code], headers });
}
