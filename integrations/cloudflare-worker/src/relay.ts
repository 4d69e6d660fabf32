/**
 * The webhook relay: Voxhook POSTs its signed deliveries here; verified ones go on to
 * WEBHOOK_FORWARD_URL (the same body and webhook-* headers, so the destination may verify
 * again) and/or onto the WEBHOOK_QUEUE Queue; anything else is refused with 401.
 *
 * The relay answers 2xx only once the event is handed on; when a destination fails it
 * answers 502, and Voxhook retries the same message later (same webhook-id: destinations
 * should drop ids they have seen).
 */

import { edgeError } from "./errors";
import { ConfigError, type ProxyEnv, type Settings } from "./settings";
import { BadSecret, parseSecrets, verifyWebhook } from "./signature";

/** Where the relay listens. */
export const RELAY_PATH = "/edge/webhooks";
/** A delivery larger than this is refused (a transcript of hours is a few MB). */
const MAX_DELIVERY_BYTES = 25 * 1024 * 1024;
/** Queue messages may be 128 KB; past this the event is left out of the message. */
const MAX_QUEUE_MESSAGE_BYTES = 120 * 1024;
/** How long the forward destination may take to answer, in milliseconds. */
const FORWARD_TIMEOUT_MS = 10_000;

/** What the relay puts on WEBHOOK_QUEUE for each verified delivery. */
export interface RelayedEvent {
  webhook_id: string;
  webhook_timestamp: number;
  /** The delivery's JSON body, or null when it was too large for a message. */
  event: unknown;
  /** Set when ``event`` was left out: fetch the transcription from Voxhook instead. */
  event_omitted?: { transcription_id: string | null; status: string | null; type: string | null };
}

export async function relay(request: Request, env: ProxyEnv, settings: Settings): Promise<Response> {
  if (request.method !== "POST") {
    return edgeError("route_not_proxied", `${RELAY_PATH} takes Voxhook's webhook POSTs only.`,
                     { headers: { Allow: "POST" } });
  }
  const secrets = parseSecrets(env.WEBHOOK_SECRETS);
  if (!secrets.length) {
    throw new ConfigError("WEBHOOK_SECRETS is not set: put the account's whsec_ secret " +
                          "(GET /api/v1/webhook_secret) with `npx wrangler secret put WEBHOOK_SECRETS`.");
  }
  if (!settings.webhookForwardUrl && !env.WEBHOOK_QUEUE) {
    throw new ConfigError("The relay has nowhere to send events: set WEBHOOK_FORWARD_URL " +
                          "or bind a WEBHOOK_QUEUE.");
  }
  if (Number(request.headers.get("Content-Length") ?? 0) > MAX_DELIVERY_BYTES) {
    return edgeError("file_too_large", `A webhook delivery may be ${MAX_DELIVERY_BYTES} bytes at most.`);
  }
  const body = await request.arrayBuffer();
  let verdict;
  try {
    verdict = await verifyWebhook(secrets, request.headers, body);
  } catch (error) {
    if (error instanceof BadSecret) throw new ConfigError(`WEBHOOK_SECRETS: ${error.message}`);
    throw error;
  }
  if (!verdict.ok) return edgeError("invalid_webhook_signature", verdict.reason);

  const failures: string[] = [];
  if (settings.webhookForwardUrl) {
    const failure = await forwardEvent(settings.webhookForwardUrl, request.headers, body,
                                       env.WEBHOOK_FORWARD_TOKEN);
    if (failure) failures.push(failure);
  }
  if (env.WEBHOOK_QUEUE) {
    try {
      await env.WEBHOOK_QUEUE.send(queueMessage(request.headers, body));
    } catch (error) {
      failures.push(`the queue refused it (${describe(error)})`);
    }
  }
  if (failures.length) {
    return edgeError("relay_destination_failed", `Verified, but not handed on: ` +
                     `${failures.join("; ")}. Voxhook will send it again.`);
  }
  return new Response(null, { status: 204 });
}

/** POST the delivery on; a message saying what went wrong, or null when it was accepted. */
async function forwardEvent(url: URL, headers: Headers, body: ArrayBuffer,
                            token: string | undefined): Promise<string | null> {
  const forwarded = new Headers({ "Content-Type": headers.get("Content-Type") ?? "application/json",
                                  "X-Voxhook-Relay": "verified" });
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    forwarded.set(name, headers.get(name) ?? "");  // present: the delivery was verified
  }
  if (token) forwarded.set("Authorization", `Bearer ${token}`);
  try {
    const response = await fetch(url, { method: "POST", headers: forwarded, body,
                                        redirect: "manual",
                                        signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS) });
    await response.body?.cancel();
    return response.ok ? null : `WEBHOOK_FORWARD_URL answered ${response.status}`;
  } catch (error) {
    return `WEBHOOK_FORWARD_URL could not be reached (${describe(error)})`;
  }
}

function queueMessage(headers: Headers, body: ArrayBuffer): RelayedEvent {
  const text = new TextDecoder().decode(body);
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch {
    event = text;
  }
  const message: RelayedEvent = { webhook_id: headers.get("webhook-id") ?? "",
                                  webhook_timestamp: Number(headers.get("webhook-timestamp")),
                                  event };
  if (new TextEncoder().encode(JSON.stringify(message)).byteLength <= MAX_QUEUE_MESSAGE_BYTES) {
    return message;
  }
  // A Standard Webhooks envelope keeps the transcription in "data"; a transcription's own
  // webhook_url gets the transcription itself.
  const record = (typeof event === "object" && event !== null ? event : {}) as Record<string, unknown>;
  const data = (typeof record.data === "object" && record.data !== null
    ? record.data : record) as Record<string, unknown>;
  return { ...message, event: null, event_omitted: {
    transcription_id: typeof data.id === "string" ? data.id : null,
    status: typeof data.status === "string" ? data.status : null,
    type: typeof record.type === "string" ? record.type : null,
  } };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
