/**
 * What the edge decides alone, watched at a loopback origin that records every request that
 * reaches it: tokens, withheld routes, headers, size and rate limits, CORS, and the JSON
 * 502/504 when the origin is down or silent.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { closedPort, jsonAnswer, newCaller, Recorder, startProxy, type RunningProxy } from "./support.ts";

const web = newCaller("web", { max_upload_bytes: 1000 });
const other = newCaller("other");
const kvCaller = newCaller("kv-caller");
const APP = "https://app.example.com";

describe("the edge, seen from a recording origin", () => {
  let origin: Recorder;
  let proxy: RunningProxy;

  before(async () => {
    origin = await new Recorder().start();
    proxy = await startProxy({ origin: origin.url, callers: [web, other], rateLimit: 5, kv: true,
                               vars: { ALLOWED_ORIGINS: `${APP}, https://admin.example.com` } });
    const { token_sha256: digest, ...record } = kvCaller.record;
    await (await proxy.kv("CALLERS")).put(`token:${String(digest)}`, JSON.stringify(record));
  });
  after(async () => {
    await proxy.close();
    await origin.close();
  });

  it("refuses a missing or unknown token with 401 and sends nothing to the origin", async () => {
    const before = origin.requests.length;
    for (const authorization of [null, "Bearer ct_not-a-caller", web.token.slice(0, -1), "sk_live_x"]) {
      const response = await fetch(`${proxy.url}/transcribe`, {
        method: "POST", body: JSON.stringify({ url: "https://example.com/a.mp3" }),
        headers: { "Content-Type": "application/json",
                   ...(authorization ? { Authorization: authorization } : {}) } });
      assert.equal(response.status, 401);
      const body = await response.json() as { error: { code: string; message: string } };
      assert.equal(body.error.code, "invalid_caller_token");
      assert.match(body.error.message, /Authorization: Bearer/);
    }
    assert.equal(origin.requests.length, before, "a refused request reached the origin");
  });

  it("forwards path, query, method, body and Idempotency-Key; swaps Authorization; adds X-Forwarded-For and a request id", async () => {
    const response = await fetch(`${proxy.url}/api/v1/transcriptions?limit=2&status=completed`, {
      method: "POST", body: '{"source":"external_url"}',
      headers: { Authorization: `Bearer ${web.token}`, "Content-Type": "application/json",
                 "Idempotency-Key": "key-123", "X-Forwarded-For": "6.6.6.6",
                 Cookie: "session=caller", "X-Request-Id": "caller-chosen" } });
    assert.equal(response.status, 200);
    const seen = origin.requests.at(-1)!;
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, "/api/v1/transcriptions?limit=2&status=completed");
    assert.equal(seen.body.toString(), '{"source":"external_url"}');
    assert.equal(seen.headers["idempotency-key"], "key-123");
    assert.equal(seen.headers["content-type"], "application/json");
    assert.match(String(seen.headers.authorization), /^Bearer sk_live_/);
    assert.ok(!String(seen.headers.authorization).includes(web.token));
    assert.equal(seen.headers.cookie, undefined);
    assert.ok(seen.headers["x-forwarded-for"] && seen.headers["x-forwarded-for"] !== "6.6.6.6",
              `X-Forwarded-For: ${String(seen.headers["x-forwarded-for"])}`);
    const requestId = response.headers.get("X-Request-Id");
    assert.match(requestId ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(seen.headers["x-request-id"], requestId);
  });

  it("accepts a caller kept in the CALLERS KV namespace", async () => {
    const response = await fetch(`${proxy.url}/transcribe/tr_x`, {
      headers: { Authorization: kvCaller.token } });
    assert.equal(response.status, 200);
    assert.equal(origin.requests.at(-1)!.url, "/transcribe/tr_x");
  });

  it("never forwards key management, the webhook secret, admin or other paths", async () => {
    const before = origin.requests.length;
    for (const path of ["/api/v1/keys", "/api/v1/keys/k_1/revoke", "/api/v1/webhook_secret",
                        "/api/v1/webhook_secret/rotate", "/api/v1/admin/accounts", "/internal/media/up_1",
                        "/openapi.json", "/transcribex"]) {
      const response = await fetch(proxy.url + path, { method: "POST",
                                                       headers: { Authorization: `Bearer ${web.token}` } });
      assert.equal(response.status, 404, path);
      assert.equal((await response.json() as { error: { code: string } }).error.code, "route_not_proxied");
    }
    assert.equal(origin.requests.length, before);
  });

  it("refuses a body over the caller's limit: by Content-Length before the origin, or while streaming", async () => {
    const before = origin.requests.length;
    const declared = await fetch(`${proxy.url}/transcribe`, {
      method: "POST", body: new Uint8Array(1001), headers: { Authorization: `Bearer ${web.token}` } });
    assert.equal(declared.status, 413);
    const body = await declared.json() as { error: { code: string; fields: Record<string, string[]> } };
    assert.equal(body.error.code, "file_too_large");
    assert.deepEqual(Object.keys(body.error.fields), ["file"]);
    assert.equal(origin.requests.length, before, "a declared-too-large body reached the origin");

    const chunked = await fetch(`${proxy.url}/transcribe`, {
      method: "POST", body: streamOf([new Uint8Array(600), new Uint8Array(600)]), duplex: "half",
      headers: { Authorization: `Bearer ${web.token}` } });
    assert.equal(chunked.status, 413);
    assert.equal((await chunked.json() as { error: { code: string } }).error.code, "file_too_large");
    // The request to the origin was aborted, not ended: no truncated body arrived complete.
    assert.equal(origin.requests.length, before, `a truncated body reached the origin as complete: ${JSON.stringify(origin.requests.slice(before).map((r) => [r.url, r.complete, r.body.length]))}`);

    const fits = await fetch(`${proxy.url}/transcribe`, {
      method: "POST", body: new Uint8Array(1000), headers: { Authorization: `Bearer ${web.token}` } });
    assert.equal(fits.status, 200);
    const sent = origin.requests.at(-1)!;
    assert.equal(sent.body.byteLength, 1000);
    // A known length reaches the origin as a Content-Length (FixedLengthStream), not chunked.
    assert.equal(sent.headers["content-length"], "1000");
    assert.equal(sent.headers["transfer-encoding"], undefined);

    const unknown = await fetch(`${proxy.url}/transcribe`, {
      method: "POST", body: streamOf([new Uint8Array(300), new Uint8Array(300)]), duplex: "half",
      headers: { Authorization: `Bearer ${web.token}` } });
    assert.equal(unknown.status, 200);
    assert.equal(origin.requests.at(-1)!.body.byteLength, 600);
    assert.equal(origin.requests.at(-1)!.headers["transfer-encoding"], "chunked");
  });

  it("CORS: answers an allowed preflight, refuses other origins, methods and headers", async () => {
    const before = origin.requests.length;
    const preflight = (origin_: string, method = "POST", headers = "authorization, content-type") =>
      fetch(`${proxy.url}/api/v1/transcriptions`, { method: "OPTIONS", headers: {
        Origin: origin_, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers } });
    const allowed = await preflight(APP, "POST", "Authorization, Content-Type, Idempotency-Key");
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get("Access-Control-Allow-Origin"), APP);
    assert.match(allowed.headers.get("Access-Control-Allow-Methods") ?? "", /\bPOST\b/);
    assert.match(allowed.headers.get("Access-Control-Allow-Headers") ?? "", /idempotency-key/);
    assert.match(allowed.headers.get("Vary") ?? "", /Origin/);
    for (const refused of [await preflight("https://evil.example"), await preflight(APP, "PATCH"),
                           await preflight(APP, "POST", "x-secret")]) {
      assert.equal(refused.status, 403);
      assert.equal(refused.headers.get("Access-Control-Allow-Origin"), null);
      assert.equal((await refused.json() as { error: { code: string } }).error.code, "origin_not_allowed");
    }
    assert.equal(origin.requests.length, before, "a preflight reached the origin");

    const fromApp = await fetch(`${proxy.url}/transcribe/tr_1`, {
      headers: { Origin: APP, Authorization: `Bearer ${other.token}` } });
    assert.equal(fromApp.status, 200);
    assert.equal(fromApp.headers.get("Access-Control-Allow-Origin"), APP);
    assert.match(fromApp.headers.get("Access-Control-Expose-Headers") ?? "", /Retry-After/);
    const fromEvil = await fetch(`${proxy.url}/transcribe/tr_1`, {
      headers: { Origin: "https://evil.example", Authorization: `Bearer ${other.token}` } });
    assert.equal(fromEvil.status, 403);
    assert.equal(fromEvil.headers.get("Access-Control-Allow-Origin"), null);
  });
});

describe("rate limits", () => {
  it("answers 429 with Retry-After once a caller used its requests, counting each caller apart", async () => {
    const origin = await new Recorder().start();
    const first = newCaller("first");
    const second = newCaller("second");
    const proxy = await startProxy({ origin: origin.url, callers: [first, second], rateLimit: 3 });
    try {
      const call = (caller: typeof first) => fetch(`${proxy.url}/transcribe/tr_1`, {
        headers: { Authorization: `Bearer ${caller.token}` } });
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await call(first)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const limited = await call(first);
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get("Retry-After"), "60");
      assert.equal((await limited.json() as { error: { code: string } }).error.code, "rate_limited");
      assert.equal(origin.requests.length, 3, "a limited request reached the origin");
      assert.equal((await call(second)).status, 200, "one caller's limit held another back");
    } finally {
      await proxy.close();
      await origin.close();
    }
  });
});

describe("an origin that is down or silent", () => {
  const caller = newCaller("caller");

  it("answers a JSON 502 origin_unreachable when nothing listens", async () => {
    const proxy = await startProxy({ origin: await closedPort(), callers: [caller] });
    try {
      const response = await fetch(`${proxy.url}/api/v1/transcriptions`, {
        method: "POST", body: "{}", headers: { Authorization: `Bearer ${caller.token}` } });
      assert.equal(response.status, 502);
      assert.match(response.headers.get("Content-Type") ?? "", /application\/json/);
      const body = await response.json() as { error: { code: string; message: string } };
      assert.equal(body.error.code, "origin_unreachable");
      assert.ok(body.error.message.includes(response.headers.get("X-Request-Id")!));
    } finally {
      await proxy.close();
    }
  });

  it("answers a JSON 504 origin_timeout when it does not answer in time", async () => {
    const silent = await new Recorder(() => { /* never answers */ }).start();
    const proxy = await startProxy({ origin: silent.url, callers: [caller],
                                     vars: { ORIGIN_TIMEOUT_MS: "700" } });
    try {
      const started = Date.now();
      const response = await fetch(`${proxy.url}/transcribe/tr_1`, {
        headers: { Authorization: `Bearer ${caller.token}` } });
      assert.equal(response.status, 504);
      assert.equal((await response.json() as { error: { code: string } }).error.code, "origin_timeout");
      assert.ok(Date.now() - started < 10_000);
      assert.equal(silent.requests.length, 1);
    } finally {
      await proxy.close();
      await silent.close();
    }
  });

  it("turns a non-JSON 5xx from something in between (a proxy's HTML page, Cloudflare's 524) into JSON 502/504", async () => {
    const statuses = [502, 524, 500];
    const between = await new Recorder((_, response) => {
      response.writeHead(statuses.shift() ?? 500, { "Content-Type": "text/html" });
      response.end("<html><body>Bad Gateway</body></html>");
    }).start();
    const proxy = await startProxy({ origin: between.url, callers: [caller] });
    try {
      const answers = [];
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${proxy.url}/transcribe/tr_1`, {
          headers: { Authorization: `Bearer ${caller.token}` } });
        answers.push([response.status, (await response.json() as { error: { code: string } }).error.code]);
      }
      assert.deepEqual(answers, [[502, "origin_unreachable"], [504, "origin_timeout"],
                                 [502, "origin_unreachable"]]);
    } finally {
      await proxy.close();
      await between.close();
    }
  });

  it("passes the origin's own errors through untouched", async () => {
    const teapot = await new Recorder((_, response) => { jsonAnswer(response, 422, {
      error: { code: "validation_error", message: "bad", fields: { url: ["missing"] } } }); }).start();
    const proxy = await startProxy({ origin: teapot.url, callers: [caller] });
    try {
      const response = await fetch(`${proxy.url}/transcribe`, {
        method: "POST", body: "{}", headers: { Authorization: `Bearer ${caller.token}` } });
      assert.equal(response.status, 422);
      assert.deepEqual(await response.json(), {
        error: { code: "validation_error", message: "bad", fields: { url: ["missing"] } } });
    } finally {
      await proxy.close();
      await teapot.close();
    }
  });
});

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      const chunk = chunks.shift();
      if (chunk) {
        controller.enqueue(chunk);
      } else {
        controller.close();
      }
    },
  });
}
