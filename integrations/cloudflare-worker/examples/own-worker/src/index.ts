/**
 * Calling Voxhook from your own Worker (the second pattern of ../../README.md): this Worker
 * holds the Voxhook key itself and offers its users one thing, "transcribe this recording":
 *
 *   POST /recordings        body: the audio (Content-Type audio/…) → 202 {"id"}
 *   GET  /recordings/{id}   → the transcription (from KV once its webhook arrived)
 *   POST /voxhook-webhook   Voxhook's signed delivery; verified, then kept in KV
 *
 * The audio streams straight through to Voxhook's signed upload URL; the result comes back
 * by webhook instead of polling, so no request waits for a transcription.
 */

import { parseSecrets, verifyWebhook } from "../../../src/signature";
import { VoxhookClient, VoxhookError, type Transcription } from "../../../src/voxhook-client";

interface ExampleEnv {
  /** Your Voxhook's base URL (var). */
  VOXHOOK_URL: string;
  /** The Voxhook key (secret). */
  VOXHOOK_API_KEY: string;
  /** The account's whsec_ webhook secret (secret). */
  VOXHOOK_WEBHOOK_SECRET: string;
  /** Finished transcriptions, by id. */
  TRANSCRIPTS: KVNamespace;
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    const voxhook = new VoxhookClient(env.VOXHOOK_URL, env.VOXHOOK_API_KEY);
    try {
      if (request.method === "POST" && url.pathname === "/recordings" && request.body) {
        const length = request.headers.get("Content-Length");
        const started = await voxhook.transcribeStream(
          request.body, length ? Number(length) : null,
          request.headers.get("Content-Type") ?? "application/octet-stream",
          { language: url.searchParams.get("language") ?? undefined,
            webhookUrl: new URL("/voxhook-webhook", url).toString() });
        return Response.json({ id: started.id }, { status: 202 });
      }
      const match = /^\/recordings\/([\w-]+)$/.exec(url.pathname);
      if (request.method === "GET" && match?.[1]) {
        const kept = await env.TRANSCRIPTS.get<Transcription>(match[1], "json");
        return Response.json(kept ?? await voxhook.get(match[1]));
      }
      if (request.method === "POST" && url.pathname === "/voxhook-webhook") {
        return await receiveWebhook(request, env);
      }
      return Response.json({ error: { code: "not_found", message: "No such route." } }, { status: 404 });
    } catch (error) {
      if (error instanceof VoxhookError) {
        return Response.json({ error: { code: error.code, message: error.message } },
                             { status: error.status >= 500 ? 502 : error.status });
      }
      throw error;
    }
  },
} satisfies ExportedHandler<ExampleEnv>;

async function receiveWebhook(request: Request, env: ExampleEnv): Promise<Response> {
  const body = await request.arrayBuffer();
  const verdict = await verifyWebhook(parseSecrets(env.VOXHOOK_WEBHOOK_SECRET), request.headers, body);
  if (!verdict.ok) {
    return Response.json({ error: { code: "invalid_webhook_signature", message: verdict.reason } },
                         { status: 401 });
  }
  const transcription = JSON.parse(new TextDecoder().decode(body)) as Transcription;
  await env.TRANSCRIPTS.put(transcription.id, JSON.stringify(transcription));
  return new Response(null, { status: 204 });
}
