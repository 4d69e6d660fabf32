/**
 * The Voxhook edge proxy: callers (browsers, phones, other services) hold only their own
 * caller tokens; the Worker holds the Voxhook key and forwards their calls to Voxhook.
 *
 * One request goes: webhook relay (its own route, authenticated by signature) → CORS
 * preflight → origin allowlist → caller token → rate limit → forwarding. Every refusal the
 * edge makes is JSON in Voxhook's own error shape (errors.ts).
 */

import { findCaller, rateLimiterOf } from "./callers";
import { answerPreflight, isPreflight, originAllowed, withCors } from "./cors";
import { edgeError } from "./errors";
import { forward, isForwarded } from "./proxy";
import { relay, RELAY_PATH } from "./relay";
import { ConfigError, readSettings, type ProxyEnv } from "./settings";

export type { ProxyEnv } from "./settings";
export type { RelayedEvent } from "./relay";

export default {
  async fetch(request, env): Promise<Response> {
    try {
      return await handle(request, env);
    } catch (error) {
      if (error instanceof ConfigError) {
        // The operator's mistake, said plainly; the caller learns only that it is not theirs.
        console.error(`voxhook-edge misconfigured: ${error.message}`);
        return edgeError("edge_misconfigured", `The proxy is misconfigured: ${error.message}`);
      }
      throw error;
    }
  },
} satisfies ExportedHandler<ProxyEnv>;

async function handle(request: Request, env: ProxyEnv): Promise<Response> {
  const settings = readSettings(env);
  const { pathname } = new URL(request.url);
  if (pathname === RELAY_PATH) return relay(request, env, settings);
  if (isPreflight(request)) return answerPreflight(request, settings);

  const requestId = crypto.randomUUID();
  const headers = { "X-Request-Id": requestId };
  let response: Response;
  if (!originAllowed(request, settings)) {
    response = edgeError("origin_not_allowed", `The origin ${request.headers.get("Origin")} ` +
                         "may not call this proxy; its operator can add it to ALLOWED_ORIGINS.",
                         { headers });
  } else if (!isForwarded(pathname)) {
    response = edgeError("route_not_proxied", `${pathname} is not forwarded: the proxy passes ` +
                         "/transcribe and /api/v1/… (but not keys, the webhook secret or admin).",
                         { headers });
  } else {
    const caller = await findCaller(request, env, settings);
    if (!caller) {
      response = edgeError("invalid_caller_token", "Send your caller token as " +
                           "'Authorization: Bearer <token>'; this one is missing or unknown.",
                           { headers });
    } else if (!(await rateLimiterOf(env, caller).limit({ key: caller.name })).success) {
      response = edgeError("rate_limited", `Too many requests from ${caller.name}; wait ` +
                           `${settings.rateLimitPeriodS} s and try again.`,
                           { headers: { ...headers, "Retry-After": String(settings.rateLimitPeriodS) } });
    } else {
      response = await forward(request, env, settings, caller, requestId);
    }
  }
  return withCors(response, request, settings);
}
