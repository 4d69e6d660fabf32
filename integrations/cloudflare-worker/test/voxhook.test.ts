/**
 * The proxy inside workerd in front of the live Voxhook: both surfaces end to end, uploads
 * byte for byte, and a refused caller that Voxhook never hears of.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { direct, fixture, newCaller, sha256Hex, startProxy, VOXHOOK, waitFinal,
         type RunningProxy } from "./support.ts";

const direct_ = newCaller("mobile");
const proxied = newCaller("browser", { upload_mode: "proxied" });

interface Upload {
  id: string;
  upload_url: string;
  method: string;
  status: string;
  size_bytes: number;
  sha256: string;
}

describe("through the proxy to the live Voxhook", () => {
  let proxy: RunningProxy;
  const as = (caller: typeof direct_, init: RequestInit = {}): RequestInit => {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${caller.token}`);
    return { ...init, headers };
  };

  before(async () => {
    proxy = await startProxy({ origin: VOXHOOK.baseUrl, callers: [direct_, proxied] });
  });
  after(() => proxy.close());

  it("runs a transcription on the Quickstart surface: POST /transcribe, then GET /transcribe/{id}", async () => {
    const created = await fetch(`${proxy.url}/transcribe`, as(direct_, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ url: `${VOXHOOK.mediaUrl}/jfk.flac`, language: "en" }) }));
    assert.equal(created.status, 200, await created.clone().text());
    const { id, status } = await created.json() as { id: string; status: string };
    assert.equal(status, "queued");
    const done = await waitFinal(`${proxy.url}/transcribe/${id}`, direct_.token);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.ok(Math.abs((done.audio_duration_seconds as number) - 11) < 1, JSON.stringify(done));
    assert.equal(typeof (done.result as { full_transcript: unknown }).full_transcript, "string");
    // What the proxy answered is what Voxhook answers its own key.
    assert.deepEqual(done, await (await direct(`/transcribe/${id}`)).json());
  });

  it("runs one on the v1 surface with an Idempotency-Key, and keeps Voxhook's statuses, errors and queries", async () => {
    const key = `edge-${crypto.randomUUID()}`;
    const body = JSON.stringify({ source: "external_url", url: `${VOXHOOK.mediaUrl}/jfk.flac`,
                                  language: "en" });
    const post = (payload: string) => fetch(`${proxy.url}/api/v1/transcriptions`, as(direct_, {
      method: "POST", body: payload,
      headers: { "Content-Type": "application/json", "Idempotency-Key": key } }));
    const first = await post(body);
    assert.equal(first.status, 201, await first.clone().text());
    const created = await first.json() as { id: string };
    const again = await post(body);
    assert.equal(again.status, 201);
    assert.equal((await again.json() as { id: string }).id, created.id, "Idempotency-Key was not forwarded");
    const reused = await post(JSON.stringify({ source: "external_url", url: `${VOXHOOK.mediaUrl}/sample.wav` }));
    assert.equal(reused.status, 422);
    assert.equal((await reused.json() as { error: { code: string } }).error.code, "idempotency_key_reused");

    const done = await waitFinal(`${proxy.url}/api/v1/transcriptions/${created.id}`, direct_.token);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.ok(Math.abs((done.audio_duration_seconds as number) - 11) < 1);

    const query = "/api/v1/transcriptions?limit=1&status=completed";
    const listed = await fetch(proxy.url + query, as(direct_));
    assert.equal(listed.status, 200);
    assert.deepEqual(await listed.json(), await (await direct(query)).json());

    const missing = await fetch(`${proxy.url}/api/v1/transcriptions/tr_doesnotexist`, as(direct_));
    const missingDirect = await direct("/api/v1/transcriptions/tr_doesnotexist");
    assert.equal(missing.status, missingDirect.status);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), await missingDirect.json());
  });

  it("hands a direct caller a signed upload URL on Voxhook itself, which takes the file without a key", async () => {
    const created = await fetch(`${proxy.url}/api/v1/uploads`, as(direct_, { method: "POST" }));
    assert.equal(created.status, 201);
    const upload = await created.json() as Upload;
    assert.equal(upload.method, "PUT");
    assert.equal(new URL(upload.upload_url).origin, new URL(VOXHOOK.baseUrl).origin);
    const audio = fixture("jfk.flac");
    const put = await fetch(upload.upload_url, { method: "PUT", body: audio,
                                                 headers: { "Content-Type": "audio/flac" } });
    assert.equal(put.status, 200, await put.clone().text());
    assert.equal((await put.json() as Upload).sha256, sha256Hex(audio));
  });

  it("streams a large upload through the proxy byte for byte, with and without a length", async () => {
    const created = await fetch(`${proxy.url}/api/v1/uploads`, as(proxied, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ filename: "long.wav" }) }));
    assert.equal(created.status, 201);
    const upload = await created.json() as Upload;
    assert.equal(new URL(upload.upload_url).origin, proxy.url, "a proxied caller's URL must point at the proxy");
    const long = Buffer.from(await (await fetch(`${VOXHOOK.mediaUrl}/long.wav`)).arrayBuffer());
    assert.ok(long.byteLength > 15_000_000, `long.wav is ${long.byteLength} bytes`);
    const put = await fetch(upload.upload_url, as(proxied, { method: "PUT", body: long,
                                                             headers: { "Content-Type": "audio/wav" } }));
    assert.equal(put.status, 200, await put.clone().text());
    const received = await put.json() as Upload;
    assert.equal(received.size_bytes, long.byteLength);
    assert.equal(received.sha256, sha256Hex(long));

    // Unknown length: sent chunked, in uneven pieces; Voxhook must still get the exact bytes.
    const second = await (await fetch(`${proxy.url}/api/v1/uploads`, as(proxied, { method: "POST" }))).json() as Upload;
    const sample = fixture("sample.wav");
    const pieces = [0, 1, 4097, 65_536, 300_001, sample.byteLength];
    let index = 0;
    const chunked = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (index + 1 >= pieces.length) {
          controller.close();
          return;
        }
        controller.enqueue(new Uint8Array(sample.subarray(pieces[index], pieces[index + 1])));
        index += 1;
      },
    });
    const streamed = await fetch(second.upload_url, as(proxied, {
      method: "PUT", body: chunked, duplex: "half", headers: { "Content-Type": "audio/wav" } }));
    assert.equal(streamed.status, 200, await streamed.clone().text());
    assert.equal((await streamed.json() as Upload).sha256, sha256Hex(sample));

    const transcription = await fetch(`${proxy.url}/api/v1/transcriptions`, as(proxied, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ source: "upload", upload_id: second.id, language: "en" }) }));
    assert.equal(transcription.status, 201, await transcription.clone().text());
    const { id } = await transcription.json() as { id: string };
    const done = await waitFinal(`${proxy.url}/api/v1/transcriptions/${id}`, proxied.token);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.ok(Math.abs((done.audio_duration_seconds as number) - 30) < 1, JSON.stringify(done));
  });

  it("streams a one-request upload (raw body on /transcribe) to a finished transcription", async () => {
    const audio = fixture("jfk.flac");
    const created = await fetch(`${proxy.url}/transcribe?language=en`, as(direct_, {
      method: "POST", body: audio, headers: { "Content-Type": "audio/flac" } }));
    assert.equal(created.status, 200, await created.clone().text());
    const { id } = await created.json() as { id: string };
    const done = await waitFinal(`${proxy.url}/transcribe/${id}`, direct_.token);
    assert.equal(done.status, "completed", JSON.stringify(done));
    assert.ok(Math.abs((done.audio_duration_seconds as number) - 11) < 1);
  });

  it("refuses a bad caller token with 401 before Voxhook sees anything", async () => {
    // The newest transcription of the account, as Voxhook lists it.
    const newest = async () => (await (await direct("/api/v1/transcriptions?limit=1")).json() as
      { data: { id: string }[] }).data[0]?.id;
    const before = await newest();
    const refused = await fetch(`${proxy.url}/transcribe`, {
      method: "POST", headers: { Authorization: `Bearer ${VOXHOOK.apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ url: `${VOXHOOK.mediaUrl}/jfk.flac` }) });
    assert.equal(refused.status, 401, "a Voxhook key is not a caller token");
    assert.equal((await refused.json() as { error: { code: string } }).error.code, "invalid_caller_token");
    assert.equal(await newest(), before, "the refused request created a transcription");
  });
});
