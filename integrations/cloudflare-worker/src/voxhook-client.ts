/**
 * A small Voxhook client for your own Worker code: copy this file (and signature.ts for
 * webhooks) into a Worker that holds a Voxhook key as a secret. It uses only fetch and
 * streams, so a file goes from your caller to Voxhook without being held in memory.
 */

/** A transcription as GET /api/v1/transcriptions/{id} answers it (the fields used here). */
export interface Transcription {
  id: string;
  status: "queued" | "processing" | "completed" | "failed" | "cancelled";
  audio_duration_seconds?: number | null;
  result?: { full_transcript: string; language: string } | null;
  error?: { code: string; message: string } | null;
}

export interface TranscribeOptions {
  language?: string;
  webhookUrl?: string;
  pipelineCode?: string;
  /** Repeating a POST with the same key returns the first answer (safe retries). */
  idempotencyKey?: string;
}

/** Voxhook answered an error: its status and `{"error": {code, message}}`. */
export class VoxhookError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

export class VoxhookClient {
  private readonly baseUrl: string;
  private readonly apiKey: string;

  /** ``baseUrl``: your Voxhook (or the edge proxy); ``apiKey``: a secret binding. */
  constructor(baseUrl: string, apiKey: string) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.apiKey = apiKey;
  }

  /** Transcribe a file Voxhook can download. */
  transcribeUrl(url: string, options: TranscribeOptions = {}): Promise<Transcription> {
    return this.createTranscription({ source: "external_url", url }, options);
  }

  /**
   * Transcribe bytes you hold as a stream (a request body, an R2 object's body): ask for a
   * signed upload URL, stream the bytes there, then start the transcription. ``length``
   * (bytes), when known, keeps a Content-Length on the upload.
   */
  async transcribeStream(body: ReadableStream, length: number | null, contentType: string,
                         options: TranscribeOptions = {}): Promise<Transcription> {
    const upload = await this.request<{ id: string; upload_url: string }>("/api/v1/uploads", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    let sent: ReadableStream = body;
    if (length !== null) {
      const fixed = new FixedLengthStream(length);
      void body.pipeTo(fixed.writable).catch(() => undefined);  // errors surface in the fetch
      sent = fixed.readable;
    }
    const put = await fetch(upload.upload_url, { method: "PUT", body: sent,
                                                 headers: { "Content-Type": contentType } });
    if (!put.ok) await raise(put);
    return this.createTranscription({ source: "upload", upload_id: upload.id }, options);
  }

  get(id: string): Promise<Transcription> {
    return this.request<Transcription>(`/api/v1/transcriptions/${encodeURIComponent(id)}`);
  }

  private createTranscription(source: Record<string, string>,
                              options: TranscribeOptions): Promise<Transcription> {
    const body: Record<string, unknown> = { ...source };
    if (options.language) body.language = options.language;
    if (options.webhookUrl) body.webhook_url = options.webhookUrl;
    if (options.pipelineCode) body.pipeline_code = options.pipelineCode;
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
    return this.request<Transcription>("/api/v1/transcriptions", {
      method: "POST", headers, body: JSON.stringify(body) });
  }

  private async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${this.apiKey}`);
    const response = await fetch(this.baseUrl + path, { ...init, headers });
    if (!response.ok) await raise(response);
    return response.json<T>();
  }
}

async function raise(response: Response): Promise<never> {
  const text = await response.text();
  let code = "http_error";
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    code = parsed.error?.code ?? code;
    message = parsed.error?.message ?? message;
  } catch {
    // Not JSON: something in between answered; keep its text.
  }
  throw new VoxhookError(response.status, code, message);
}
