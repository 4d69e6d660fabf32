/**
 * The webhook relay receiving real deliveries from the live Voxhook's webhook worker (the
 * Worker listens on a loopback port, and a transcription's webhook_url points at it), then
 * handing them to a loopback destination and onto a Queue; tampered, forged and stale
 * deliveries are refused.
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { direct, newCaller, Recorder, startProxy, VOXHOOK, type Recorded,
         type RunningProxy } from "./support.ts";

const caller = newCaller("relay-tests");
const FORWARD_TOKEN = "destination-token";

/** Standard Webhooks signing, written independently of the Worker's (node:crypto). */
function sign(secret: string, id: string, timestamp: string | number, body: Buffer | string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  return "v1," + createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest("base64");
}

async function currentSecret(): Promise<string> {
  const response = await direct("/api/v1/webhook_secret");
  assert.equal(response.status, 200);
  return (await response.json() as { secret: string }).secret;
}

/** Start a transcription whose webhook goes to ``proxy``'s relay; its id. */
async function transcribeWithWebhook(proxy: RunningProxy): Promise<string> {
  const response = await fetch(`${proxy.url}/api/v1/transcriptions`, {
    method: "POST", headers: { Authorization: `Bearer ${caller.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ source: "external_url", url: `${VOXHOOK.mediaUrl}/jfk.flac`,
                           language: "en", webhook_url: `${proxy.url}/edge/webhooks` }) });
  assert.equal(response.status, 201, await response.clone().text());
  return (await response.json() as { id: string }).id;
}

function header(request: Recorded, name: string): string {
  return String(request.headers[name]);
}

describe("the webhook relay, fed by the live Voxhook", () => {
  let secret: string;
  let destination: Recorder;
  let proxy: RunningProxy;
  let delivered: Recorded;

  before(async () => {
    secret = await currentSecret();
    destination = await new Recorder().start();
    proxy = await startProxy({ origin: VOXHOOK.baseUrl, callers: [caller],
                               vars: { WEBHOOK_FORWARD_URL: `${destination.url}/events` },
                               secrets: { WEBHOOK_SECRETS: secret, WEBHOOK_FORWARD_TOKEN: FORWARD_TOKEN } });
  });
  after(async () => {
    await proxy.close();
    await destination.close();
  });

  it("verifies a real delivery and hands it on unchanged; Voxhook records it delivered", async () => {
    const id = await transcribeWithWebhook(proxy);
    [delivered] = await destination.waitFor(1);
    assert.equal(delivered!.url, "/events");
    const event = JSON.parse(delivered!.body.toString()) as { id: string; status: string };
    assert.equal(event.id, id);
    assert.equal(event.status, "completed");
    assert.equal(header(delivered!, "x-voxhook-relay"), "verified");
    assert.equal(header(delivered!, "authorization"), `Bearer ${FORWARD_TOKEN}`);
    // The destination got Voxhook's own bytes and signature: it can verify them again.
    assert.ok(header(delivered!, "webhook-signature").split(" ").includes(
      sign(secret, header(delivered!, "webhook-id"), header(delivered!, "webhook-timestamp"), delivered!.body)));

    const deadline = Date.now() + 30_000;
    let deliveries: { status: string; last_status_code: number | null }[] = [];
    while (Date.now() < deadline) {
      const listed = await fetch(`${proxy.url}/api/v1/transcriptions/${id}/webhook_deliveries`, {
        headers: { Authorization: `Bearer ${caller.token}` } });
      deliveries = (await listed.json() as { data: typeof deliveries }).data;
      if (deliveries[0]?.status === "delivered") break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(deliveries[0]?.status, "delivered", JSON.stringify(deliveries));
    assert.equal(deliveries[0]?.last_status_code, 204);
  });

  it("refuses a tampered, forged, stale or unsigned delivery with 401 and hands none on", async () => {
    assert.ok(delivered, "the previous test's delivery is needed");
    const id = header(delivered, "webhook-id");
    const timestamp = header(delivered, "webhook-timestamp");
    const signature = header(delivered, "webhook-signature");
    const genuine = { "content-type": "application/json", "webhook-id": id,
                      "webhook-timestamp": timestamp, "webhook-signature": signature };
    const tampered = Buffer.from(delivered.body.toString().replace('"completed"', '"failed"'));
    assert.notDeepEqual(tampered, delivered.body);
    const stale = String(Math.floor(Date.now() / 1000) - 6 * 60);
    const forgedKey = "whsec_" + Buffer.from("not the account's secret, 32 b.").toString("base64");
    const attempts: [string, Record<string, string>, Buffer][] = [
      ["tampered body", genuine, tampered],
      ["forged signature", { ...genuine, "webhook-signature": sign(forgedKey, id, timestamp, delivered.body) },
       delivered.body],
      ["other message id", { ...genuine, "webhook-id": "msg_other" }, delivered.body],
      ["stale timestamp, correctly signed", { ...genuine, "webhook-timestamp": stale,
                                              "webhook-signature": sign(secret, id, stale, delivered.body) },
       delivered.body],
      ["no signature", { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": timestamp },
       delivered.body],
    ];
    const before = destination.requests.length;
    for (const [what, headers, body] of attempts) {
      const response = await fetch(`${proxy.url}/edge/webhooks`, { method: "POST", headers, body });
      assert.equal(response.status, 401, what);
      const error = (await response.json() as { error: { code: string; message: string } }).error;
      assert.equal(error.code, "invalid_webhook_signature", what);
      if (what.startsWith("stale")) assert.match(error.message, /300 s/);
    }
    assert.equal(destination.requests.length, before, "a refused delivery was handed on");

    // The genuine bytes still pass (within the tolerance): the refusals were the tampering.
    const replay = await fetch(`${proxy.url}/edge/webhooks`, { method: "POST", headers: genuine,
                                                               body: delivered.body });
    assert.equal(replay.status, 204);
  });

  it("answers 502 when the destination fails, so Voxhook tries again", async () => {
    const failing = await new Recorder((_, response) => { response.writeHead(500); response.end(); }).start();
    const relay = await startProxy({ origin: VOXHOOK.baseUrl, callers: [caller],
                                     vars: { WEBHOOK_FORWARD_URL: failing.url },
                                     secrets: { WEBHOOK_SECRETS: secret } });
    try {
      const now = Math.floor(Date.now() / 1000);
      const body = '{"id":"tr_x","status":"completed"}';
      const response = await fetch(`${relay.url}/edge/webhooks`, { method: "POST", body, headers: {
        "content-type": "application/json", "webhook-id": "msg_1", "webhook-timestamp": String(now),
        "webhook-signature": sign(secret, "msg_1", now, body) } });
      assert.equal(response.status, 502);
      assert.equal((await response.json() as { error: { code: string } }).error.code, "relay_destination_failed");
      assert.equal(failing.requests.length, 1);
    } finally {
      await relay.close();
      await failing.close();
    }
  });

  it("during a secret rotation accepts real deliveries with the old or the new secret alone, onto a Queue", async () => {
    const old = secret;
    const rotated = await direct("/api/v1/webhook_secret/rotate", { method: "POST" });
    assert.equal(rotated.status, 200);
    const fresh = (await rotated.json() as { secret: string }).secret;
    assert.notEqual(fresh, old);

    for (const held of [old, fresh]) {
      const seen = await new Recorder().start();
      const relay = await startProxy({ origin: VOXHOOK.baseUrl, callers: [caller], queue: true,
                                       vars: { WEBHOOK_FORWARD_URL: seen.url },
                                       secrets: { WEBHOOK_SECRETS: held } });
      try {
        const id = await transcribeWithWebhook(relay);
        const request = (await seen.waitFor(1))[0];
        assert.equal(header(request, "webhook-signature").split(" ").length, 2,
                     "Voxhook signs with both secrets during a rotation");
        const webhookId = header(request, "webhook-id");
        const relayed = await relay.kv("RELAYED", "queue-reader");
        const deadline = Date.now() + 20_000;
        let message: string | null = null;
        while (message === null && Date.now() < deadline) {
          message = await relayed.get(webhookId);
          if (message === null) await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.ok(message, "the verified event never reached the queue");
        const parsed = JSON.parse(message) as { webhook_id: string; event: { id: string; status: string } };
        assert.equal(parsed.webhook_id, webhookId);
        assert.equal(parsed.event.id, id);
        assert.equal(parsed.event.status, "completed");
      } finally {
        await relay.close();
        await seen.close();
      }
    }
  });
});
