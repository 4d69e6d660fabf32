/**
 * The second pattern, your own Worker calling Voxhook (examples/own-worker), inside workerd
 * against the live Voxhook: a recording streamed in, the result back by a real webhook.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { direct, fixture, startExample } from "./support.ts";

describe("examples/own-worker", () => {
  it("streams a recording to Voxhook and keeps the verified webhook's transcription", async () => {
    const secret = (await (await direct("/api/v1/webhook_secret")).json() as { secret: string }).secret;
    const worker = await startExample(secret);
    try {
      const audio = fixture("jfk.flac");
      const started = await fetch(`${worker.url}/recordings?language=en`, {
        method: "POST", body: new Uint8Array(audio), headers: { "Content-Type": "audio/flac" } });
      assert.equal(started.status, 202, await started.clone().text());
      const { id } = await started.json() as { id: string };

      const transcripts = await worker.kv("TRANSCRIPTS");
      const deadline = Date.now() + 60_000;
      while (await transcripts.get(id) === null) {
        assert.ok(Date.now() < deadline, "the webhook never arrived (or was refused)");
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const kept = await (await fetch(`${worker.url}/recordings/${id}`)).json() as
        { id: string; status: string; audio_duration_seconds: number };
      assert.equal(kept.id, id);
      assert.equal(kept.status, "completed");
      assert.ok(Math.abs(kept.audio_duration_seconds - 11) < 1);

      const forged = await fetch(`${worker.url}/voxhook-webhook`, { method: "POST", body: "{}", headers: {
        "webhook-id": "msg_x", "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "webhook-signature": "v1,AAAA" } });
      assert.equal(forged.status, 401);
    } finally {
      await worker.close();
    }
  });
});
