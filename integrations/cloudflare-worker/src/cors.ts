/**
 * CORS for browser callers: only origins on ALLOWED_ORIGINS may call, and a preflight is
 * answered here (it carries no token, and never reaches Voxhook).
 */

import { edgeError } from "./errors";
import type { Settings } from "./settings";

/** Methods the proxy forwards; a preflight asking for another is refused. */
export const ALLOWED_METHODS = ["GET", "POST", "PUT", "DELETE"] as const;
/** Request headers a browser may send (besides the CORS-safelisted ones). */
export const ALLOWED_HEADERS = ["authorization", "content-type", "idempotency-key"] as const;
/** Response headers a browser script may read. */
const EXPOSED_HEADERS = "Retry-After, X-Request-Id, Location, Content-Disposition";
/** How long a browser may cache a preflight answer, in seconds. */
const PREFLIGHT_MAX_AGE_S = "600";

export function isPreflight(request: Request): boolean {
  return request.method === "OPTIONS" && request.headers.has("Origin") &&
    request.headers.has("Access-Control-Request-Method");
}

/** Whether the request may proceed: no Origin (not a browser), or an allowed one. */
export function originAllowed(request: Request, settings: Settings): boolean {
  const origin = request.headers.get("Origin");
  return origin === null || settings.allowedOrigins.has(origin);
}

/** The answer to a preflight: 204 with the grants, or 403 naming what was not allowed. */
export function answerPreflight(request: Request, settings: Settings): Response {
  const origin = request.headers.get("Origin") ?? "";
  const method = (request.headers.get("Access-Control-Request-Method") ?? "").toUpperCase();
  const asked = (request.headers.get("Access-Control-Request-Headers") ?? "")
    .split(",").map((name) => name.trim().toLowerCase()).filter(Boolean);
  const vary = { Vary: "Origin" };
  if (!settings.allowedOrigins.has(origin)) {
    return edgeError("origin_not_allowed", `The origin ${origin} may not call this proxy; ` +
                     "its operator can add it to ALLOWED_ORIGINS.", { headers: vary });
  }
  if (!(ALLOWED_METHODS as readonly string[]).includes(method)) {
    return edgeError("origin_not_allowed", `The method ${method} is not forwarded; allowed: ` +
                     `${ALLOWED_METHODS.join(", ")}.`, { headers: vary });
  }
  const refused = asked.filter((name) => !(ALLOWED_HEADERS as readonly string[]).includes(name));
  if (refused.length) {
    return edgeError("origin_not_allowed", `The request headers ${refused.join(", ")} are not ` +
                     `allowed; allowed: ${ALLOWED_HEADERS.join(", ")}.`, { headers: vary });
  }
  return new Response(null, { status: 204, headers: {
    "Access-Control-Allow-Origin": origin,
    "Access-Control-Allow-Methods": ALLOWED_METHODS.join(", "),
    "Access-Control-Allow-Headers": ALLOWED_HEADERS.join(", "),
    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_S,
    ...vary,
  } });
}

/** ``response`` with the CORS grant for the request's origin when it is allowed. */
export function withCors(response: Response, request: Request, settings: Settings): Response {
  const origin = request.headers.get("Origin");
  const headers = new Headers(response.headers);
  headers.append("Vary", "Origin");
  if (origin !== null && settings.allowedOrigins.has(origin)) {
    headers.set("Access-Control-Allow-Origin", origin);
    headers.set("Access-Control-Expose-Headers", EXPOSED_HEADERS);
  }
  return new Response(response.body, { status: response.status,
                                       statusText: response.statusText, headers });
}
