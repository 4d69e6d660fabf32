/**
 * Standard Webhooks verification with Web Crypto (https://www.standardwebhooks.com).
 *
 * A delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
 * `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` entries of
 * `{id}.{timestamp}.{raw body}`, keyed with the base64-decoded part of the `whsec_` secret.
 * During a rotation Voxhook signs with both its secrets, so a receiver holding either one
 * verifies; this one accepts several secrets too, so the Worker can be switched at leisure.
 * Signatures are compared in constant time, and timestamps further than the tolerance from
 * now are refused (a replayed old delivery fails even with its genuine signature).
 */

/** Standard Webhooks' recommended window either side of now, in seconds. */
export const TOLERANCE_S = 5 * 60;

export type Verdict = { ok: true } | { ok: false; reason: string };

/** A secret that is not `whsec_<base64>`. */
export class BadSecret extends Error {}

/** Whether ``body`` with ``headers`` was signed with one of ``secrets`` within the tolerance. */
export async function verifyWebhook(secrets: readonly string[], headers: Headers,
                                    body: ArrayBuffer, nowS: number = Date.now() / 1000
                                    ): Promise<Verdict> {
  const id = headers.get("webhook-id");
  const timestamp = headers.get("webhook-timestamp");
  const signatures = headers.get("webhook-signature");
  if (!id) return { ok: false, reason: "The webhook-id header is missing." };
  if (!timestamp) return { ok: false, reason: "The webhook-timestamp header is missing." };
  if (!signatures) return { ok: false, reason: "The webhook-signature header is missing." };
  if (!/^\d+$/.test(timestamp)) {
    return { ok: false, reason: "webhook-timestamp is not Unix seconds." };
  }
  if (Math.abs(nowS - Number(timestamp)) > TOLERANCE_S) {
    return { ok: false, reason: `webhook-timestamp is more than ${TOLERANCE_S} s from now ` +
             "(a replay, or a clock far off)." };
  }
  const given = signatures.split(/\s+/).filter((entry) => entry.startsWith("v1,"))
    .map((entry) => decodeBase64(entry.slice(3))).filter((bytes) => bytes !== null);
  if (!given.length) {
    return { ok: false, reason: "webhook-signature holds no v1 signature." };
  }
  const signed = concat(new TextEncoder().encode(`${id}.${timestamp}.`), new Uint8Array(body));
  for (const secret of secrets) {
    const expected = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), signed));
    for (const signature of given) {
      if (signature.byteLength === expected.byteLength &&
          crypto.subtle.timingSafeEqual(signature, expected)) {
        return { ok: true };
      }
    }
  }
  return { ok: false, reason: "No signature matches: the body or headers were altered, or " +
           "the Worker's WEBHOOK_SECRETS is not this account's secret." };
}

/** The secrets of a WEBHOOK_SECRETS value (whsec_… separated by spaces or commas). */
export function parseSecrets(value: string | undefined): string[] {
  return (value ?? "").split(/[\s,]+/).filter(Boolean);
}

/** Sign like Voxhook does (for the pattern of calling Voxhook from a Worker, and tests). */
export async function signWebhook(secret: string, id: string, timestamp: number,
                                  body: ArrayBuffer | Uint8Array): Promise<string> {
  const signed = concat(new TextEncoder().encode(`${id}.${timestamp}.`), new Uint8Array(body));
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), signed));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  const raw = secret.startsWith("whsec_") ? decodeBase64(secret.slice("whsec_".length)) : null;
  if (!raw || !raw.byteLength) {
    throw new BadSecret("A webhook secret is not whsec_ followed by base64; copy it as " +
                        "GET /api/v1/webhook_secret answers it.");
  }
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

function decodeBase64(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

function concat(head: Uint8Array, tail: Uint8Array): Uint8Array {
  const joined = new Uint8Array(head.byteLength + tail.byteLength);
  joined.set(head);
  joined.set(tail, head.byteLength);
  return joined;
}
