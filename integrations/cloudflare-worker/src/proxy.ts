/**
 * Forwarding to Voxhook: the same path, query, method, headers and body, with the caller's
 * token swapped for the Voxhook key; Voxhook's answer (status, headers, body) comes back as
 * it is. Bodies stream through without being held: a known length keeps its Content-Length
 * (FixedLengthStream), an unknown one goes chunked, and both are counted against the
 * caller's size limit on the way.
 */

import type { Caller } from "./callers";
import { edgeError } from "./errors";
import { requiredSecret, type ProxyEnv, type Settings } from "./settings";

/** The paths that are Voxhook's two public surfaces. */
const SURFACES = [/^\/transcribe(\/|$)/, /^\/api\/v1\//];
/**
 * Paths of those surfaces that are never forwarded: they would hand a caller a credential
 * worth more than its token (a new Voxhook key, the webhook signing secret) or are the
 * operator's (admin).
 */
const WITHHELD = [/^\/api\/v1\/keys(\/|$)/, /^\/api\/v1\/webhook_secret(\/|$)/,
                  /^\/api\/v1\/admin(\/|$)/];
/** The route that hands out signed upload URLs. */
const UPLOADS_PATH = "/api/v1/uploads";

/** Headers that describe one hop, or must be set by the proxy alone; never copied across. */
const REQUEST_HEADERS_DROPPED = new Set([
  "authorization", "host", "connection", "keep-alive", "proxy-authorization",
  "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "x-forwarded-for",
  "x-request-id", "cookie", "cf-connecting-ip", "cf-ipcountry", "cf-ray", "cf-visitor",
  "cf-worker", "x-real-ip", "origin", "content-length",
]);
const RESPONSE_HEADERS_DROPPED = new Set([
  "connection", "keep-alive", "transfer-encoding", "upgrade", "trailer", "set-cookie",
]);

/** Whether the proxy forwards this path at all. */
export function isForwarded(pathname: string): boolean {
  return SURFACES.some((surface) => surface.test(pathname)) &&
    !WITHHELD.some((path) => path.test(pathname));
}

/** The body went over the caller's limit while streaming. */
class BodyTooLarge extends Error {}

/**
 * Statuses that, without a JSON body, come from what sits between the Worker and Voxhook
 * (Cloudflare's 52x pages, a load balancer's 502/504 page), never from Voxhook itself, whose
 * every error is JSON: they become the edge's own 504 (timeouts) or 502 (the rest).
 */
const TIMEOUT_STATUSES = new Set([504, 522, 524]);

/** Forward ``request`` for ``caller``; never throws for what Voxhook or the network does. */
export async function forward(request: Request, env: ProxyEnv, settings: Settings,
                              caller: Caller, requestId: string): Promise<Response> {
  const url = new URL(request.url);
  const apiKey = requiredSecret("VOXHOOK_API_KEY", env.VOXHOOK_API_KEY);
  const target = new URL(url.pathname + url.search, settings.origin);
  const idHeader = { headers: { "X-Request-Id": requestId } };

  const declared = declaredLength(request);
  if (declared !== null && declared > caller.maxUploadBytes) {
    return tooLarge(caller, requestId);
  }
  const send = new Sending(settings.originTimeoutMs);
  // A request body is bytes; the runtime's types leave its chunk type open.
  const source = request.method === "GET" || request.method === "HEAD"
    ? null : request.body as ReadableStream<Uint8Array> | null;
  const body = source ? limitedBody(source, caller.maxUploadBytes, declared, send) : null;
  if (!body) send.sent();

  let response: Response;
  try {
    response = await fetch(target, {
      method: request.method, headers: forwardedHeaders(request, apiKey, requestId), body,
      redirect: "manual", signal: send.signal,
    });
  } catch (error) {
    if (send.failure instanceof BodyTooLarge) return tooLarge(caller, requestId);
    if (send.timedOut) return timedOut(settings, requestId);
    return edgeError("origin_unreachable", `Voxhook could not be reached ` +
                     `(${send.failure ? describe(send.failure) : describe(error)}); ` +
                     `try again later (request ${requestId}).`, idHeader);
  } finally {
    send.done();
  }
  if (response.status >= 500 && !isJson(response)) {
    await response.body?.cancel();
    if (TIMEOUT_STATUSES.has(response.status)) return timedOut(settings, requestId);
    return edgeError("origin_unreachable", `Voxhook could not be reached (something between ` +
                     `answered ${response.status}); try again later (request ${requestId}).`,
                     idHeader);
  }
  if (request.method === "POST" && url.pathname === UPLOADS_PATH && response.status === 201 &&
      caller.uploadMode === "proxied") {
    response = await throughTheProxy(response, url.origin);
  }
  return answered(response, requestId);
}

function isJson(response: Response): boolean {
  return /^application\/(.+\+)?json\b/i.test(response.headers.get("Content-Type") ?? "");
}

function timedOut(settings: Settings, requestId: string): Response {
  return edgeError("origin_timeout", `Voxhook did not answer within ` +
                   `${settings.originTimeoutMs} ms; try again later (request ${requestId}).`,
                   { headers: { "X-Request-Id": requestId } });
}

function forwardedHeaders(request: Request, apiKey: string, requestId: string): Headers {
  const headers = new Headers();
  for (const [name, value] of request.headers) {
    if (!REQUEST_HEADERS_DROPPED.has(name) && !name.startsWith("cf-")) headers.set(name, value);
  }
  headers.set("Authorization", `Bearer ${apiKey}`);
  // The caller's own X-Forwarded-For is its word, not a fact; Cloudflare's is.
  headers.set("X-Forwarded-For", request.headers.get("CF-Connecting-IP") ?? "unknown");
  headers.set("X-Request-Id", requestId);
  return headers;
}

function declaredLength(request: Request): number | null {
  const header = request.headers.get("Content-Length");
  return header !== null && /^\d+$/.test(header) ? Number(header) : null;
}

/**
 * The request body as a stream that keeps ``declared`` as its exact length and tells
 * ``send`` when its last byte went out. A body that grows past ``limit``, or that breaks
 * (the caller went away), errors the stream and aborts the request to Voxhook, which never
 * sees a complete message: a truncated file must not pass for a whole one (a test watches
 * for exactly that at a recording origin).
 */
function limitedBody(source: ReadableStream<Uint8Array>, limit: number, declared: number | null,
                     send: Sending): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let seen = 0;
  const counted = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        send.fail(failure);
        controller.error(failure);
        return;
      }
      if (chunk.done) {
        send.sent();
        controller.close();
        return;
      }
      seen += chunk.value.byteLength;
      if (seen > limit) {
        const failure = new BodyTooLarge();
        send.fail(failure);
        controller.error(failure);
        await reader.cancel(failure).catch(() => undefined);
        return;
      }
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  // With a known length Voxhook gets a Content-Length (and can refuse early) instead of a
  // chunked body; FixedLengthStream also fails a body that is shorter or longer than declared.
  return declared === null ? counted : counted.pipeThrough(new FixedLengthStream(declared));
}

/**
 * One request to Voxhook: aborted when its body fails, and given ORIGIN_TIMEOUT_MS to start
 * answering once the body is sent (an upload of minutes is not a slow origin).
 */
class Sending {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly timeoutMs: number;
  readonly signal = this.controller.signal;
  timedOut = false;
  failure: Error | null = null;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** The body is sent (or there is none): start the clock. */
  sent(): void {
    this.timer ??= setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new Error("origin timeout"));
    }, this.timeoutMs);
  }

  /** The body failed: abort the request. */
  fail(error: Error): void {
    this.failure ??= error;
    this.controller.abort(error);
  }

  done(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function tooLarge(caller: Caller, requestId: string): Response {
  return edgeError("file_too_large", `The body is over ${caller.maxUploadBytes} bytes, this ` +
                   "caller's limit; send a smaller file or ask the proxy's operator to raise " +
                   "max_upload_bytes.", { fields: { file: [`at most ${caller.maxUploadBytes} bytes`] },
                                          headers: { "X-Request-Id": requestId } });
}

/** A created upload whose URL goes to the proxy instead of Voxhook (same path and query). */
async function throughTheProxy(response: Response, proxyOrigin: string): Promise<Response> {
  const upload = await response.json<Record<string, unknown>>();
  if (typeof upload.upload_url === "string") {
    const signed = new URL(upload.upload_url);
    upload.upload_url = new URL(signed.pathname + signed.search, proxyOrigin).toString();
  }
  const headers = new Headers(response.headers);
  headers.delete("Content-Length");
  return new Response(JSON.stringify(upload), { status: response.status, headers });
}

function answered(response: Response, requestId: string): Response {
  const headers = new Headers();
  for (const [name, value] of response.headers) {
    if (!RESPONSE_HEADERS_DROPPED.has(name)) headers.append(name, value);
  }
  headers.set("X-Request-Id", requestId);
  return new Response(response.body, { status: response.status,
                                       statusText: response.statusText, headers });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
