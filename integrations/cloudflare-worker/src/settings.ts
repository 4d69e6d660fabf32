/**
 * The Worker's configuration, read from its bindings once per request into a typed object
 * (vars are strings; a malformed one is reported by name, never silently defaulted).
 */

import type { RelayedEvent } from "./relay";

/** What `wrangler types` cannot see: secrets, and the bindings that are optional. */
export interface ProxyEnv extends Env {
  /** The Voxhook key every forwarded call carries (secret). */
  VOXHOOK_API_KEY?: string;
  /** JSON list of caller records (secret); see callers.ts. */
  CALLER_TOKENS?: string;
  /** whsec_… secrets the relay accepts, separated by spaces (secret). */
  WEBHOOK_SECRETS?: string;
  /** Bearer token for WEBHOOK_FORWARD_URL (secret). */
  WEBHOOK_FORWARD_TOKEN?: string;
  /** Optional KV namespace of callers: "token:<sha256 hex>" → caller record. */
  CALLERS?: KVNamespace;
  /** Optional Queue that receives verified webhook events. */
  WEBHOOK_QUEUE?: Queue<RelayedEvent>;
}

/** A setting that is missing or malformed: the edge answers 503 edge_misconfigured. */
export class ConfigError extends Error {}

export interface Settings {
  /** Voxhook's base URL as the Worker reaches it. */
  origin: URL;
  /** Browser origins allowed by CORS (exact "scheme://host[:port]" strings). */
  allowedOrigins: ReadonlySet<string>;
  defaultMaxUploadBytes: number;
  originTimeoutMs: number;
  rateLimitPeriodS: number;
  /** Where verified webhooks are POSTed, or null. */
  webhookForwardUrl: URL | null;
}

export function readSettings(env: ProxyEnv): Settings {
  return {
    origin: absoluteUrl("VOXHOOK_ORIGIN", env.VOXHOOK_ORIGIN),
    allowedOrigins: new Set(env.ALLOWED_ORIGINS.split(/[\s,]+/).filter(Boolean)
      .map((origin) => origin.replace(/\/+$/, ""))),
    defaultMaxUploadBytes: positiveInteger("DEFAULT_MAX_UPLOAD_BYTES",
                                           env.DEFAULT_MAX_UPLOAD_BYTES),
    originTimeoutMs: positiveInteger("ORIGIN_TIMEOUT_MS", env.ORIGIN_TIMEOUT_MS),
    rateLimitPeriodS: positiveInteger("RATE_LIMIT_PERIOD_S", env.RATE_LIMIT_PERIOD_S),
    webhookForwardUrl: env.WEBHOOK_FORWARD_URL
      ? absoluteUrl("WEBHOOK_FORWARD_URL", env.WEBHOOK_FORWARD_URL) : null,
  };
}

/** A required secret, or a ConfigError that names it. */
export function requiredSecret(name: string, value: string | undefined): string {
  if (!value) {
    throw new ConfigError(`The secret ${name} is not set: run \`npx wrangler secret put ${name}\`.`);
  }
  return value;
}

function absoluteUrl(name: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be an absolute http(s) URL, e.g. https://voxhook.example.com.`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new ConfigError(`${name} must be an http(s) URL, not ${url.protocol}.`);
  }
  return url;
}

function positiveInteger(name: string, value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number <= 0) {
    throw new ConfigError(`${name} must be a positive whole number, not "${value}".`);
  }
  return number;
}
