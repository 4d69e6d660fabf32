/**
 * Who is calling: caller tokens are the proxy's own credentials, never Voxhook keys.
 *
 * The Worker stores only SHA-256 digests of tokens, in the CALLER_TOKENS secret (a JSON list)
 * and/or the CALLERS KV namespace ("token:<hex digest>" → record), so neither a leaked
 * configuration nor a KV listing reveals a usable token. A caller's record carries its
 * limits; everything it omits falls back to the Worker's defaults.
 */

import { ConfigError, type ProxyEnv, type Settings } from "./settings";

/** A caller record as written in CALLER_TOKENS or a CALLERS value. */
export interface CallerRecord {
  /** Shown in logs and used as the rate-limit key; unique per caller. */
  name: string;
  /** Hex SHA-256 of the token (CALLER_TOKENS only; in KV it is the key). */
  token_sha256?: string;
  /** Largest request body this caller may send, in bytes. */
  max_upload_bytes?: number;
  /** Name of the rate-limit binding that counts this caller. */
  rate_limiter?: string;
  /**
   * "direct" (default): signed upload URLs point at Voxhook itself, so big files skip the
   * Worker. "proxied": they point at the Worker, which then applies max_upload_bytes.
   */
  upload_mode?: "direct" | "proxied";
}

export interface Caller {
  name: string;
  maxUploadBytes: number;
  rateLimiter: string;
  uploadMode: "direct" | "proxied";
}

export const DEFAULT_RATE_LIMITER = "CALLER_RATE_LIMIT";

/** The caller a request's token belongs to, or null (no token, or an unknown one). */
export async function findCaller(request: Request, env: ProxyEnv,
                                 settings: Settings): Promise<Caller | null> {
  const token = bearerToken(request.headers.get("Authorization"));
  if (!token) return null;
  const digest = await sha256Hex(token);
  const record = findInList(env.CALLER_TOKENS, digest) ?? await findInKv(env.CALLERS, digest);
  return record ? toCaller(record, settings) : null;
}

/** "Bearer <token>" or the bare token (as Voxhook itself accepts both). */
export function bearerToken(header: string | null): string | null {
  const token = header?.replace(/^Bearer\s+/i, "").trim();
  return token ? token : null;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function findInList(secret: string | undefined, digest: string): CallerRecord | null {
  if (!secret) return null;
  let records: unknown;
  try {
    records = JSON.parse(secret);
  } catch {
    throw new ConfigError("CALLER_TOKENS is not valid JSON: it must be a list of caller " +
                          'records such as [{"name": "web", "token_sha256": "<hex>"}].');
  }
  if (!Array.isArray(records)) {
    throw new ConfigError("CALLER_TOKENS must be a JSON list of caller records.");
  }
  const wanted = new TextEncoder().encode(digest);
  let found: CallerRecord | null = null;
  // Every entry is compared, in constant time, so timing tells nothing about near misses.
  for (const [index, value] of records.entries()) {
    const record = checkedRecord(value, `CALLER_TOKENS[${index}]`);
    const known = new TextEncoder().encode((record.token_sha256 ?? "").toLowerCase());
    if (known.byteLength === wanted.byteLength && crypto.subtle.timingSafeEqual(known, wanted)) {
      found = record;
    }
  }
  return found;
}

async function findInKv(namespace: KVNamespace | undefined,
                        digest: string): Promise<CallerRecord | null> {
  if (!namespace) return null;
  const value = await namespace.get(`token:${digest}`, "text");
  if (value === null) return null;
  let record: unknown;
  try {
    record = JSON.parse(value);
  } catch {
    throw new ConfigError(`The CALLERS value under token:${digest.slice(0, 8)}… is not JSON.`);
  }
  return checkedRecord(record, `CALLERS token:${digest.slice(0, 8)}…`);
}

function checkedRecord(value: unknown, where: string): CallerRecord {
  if (typeof value !== "object" || value === null) {
    throw new ConfigError(`${where} must be an object with at least "name".`);
  }
  const record = value as Record<string, unknown>;
  if (typeof record.name !== "string" || !record.name) {
    throw new ConfigError(`${where} needs a "name" (a non-empty string).`);
  }
  if (record.token_sha256 !== undefined &&
      (typeof record.token_sha256 !== "string" || !/^[0-9a-fA-F]{64}$/.test(record.token_sha256))) {
    throw new ConfigError(`${where}.token_sha256 must be 64 hex digits (sha256 of the token).`);
  }
  if (record.max_upload_bytes !== undefined &&
      !(Number.isSafeInteger(record.max_upload_bytes) && (record.max_upload_bytes as number) > 0)) {
    throw new ConfigError(`${where}.max_upload_bytes must be a positive whole number of bytes.`);
  }
  if (record.rate_limiter !== undefined && typeof record.rate_limiter !== "string") {
    throw new ConfigError(`${where}.rate_limiter must name a rate-limit binding.`);
  }
  if (record.upload_mode !== undefined && record.upload_mode !== "direct" &&
      record.upload_mode !== "proxied") {
    throw new ConfigError(`${where}.upload_mode must be "direct" or "proxied".`);
  }
  return record as unknown as CallerRecord;
}

function toCaller(record: CallerRecord, settings: Settings): Caller {
  return {
    name: record.name,
    maxUploadBytes: record.max_upload_bytes ?? settings.defaultMaxUploadBytes,
    rateLimiter: record.rate_limiter ?? DEFAULT_RATE_LIMITER,
    uploadMode: record.upload_mode ?? "direct",
  };
}

/** The rate-limit binding a caller names, checked to be one. */
export function rateLimiterOf(env: ProxyEnv, caller: Caller): RateLimit {
  const binding = (env as unknown as Record<string, unknown>)[caller.rateLimiter];
  if (typeof binding !== "object" || binding === null ||
      typeof (binding as { limit?: unknown }).limit !== "function") {
    throw new ConfigError(`Caller "${caller.name}" names the rate limiter ` +
                          `"${caller.rateLimiter}", which is not a ratelimits binding.`);
  }
  return binding as RateLimit;
}
