/**
 * What the tests share: the live Voxhook they are pointed at (environment variables set by
 * tests/integrations/test_cloudflare_worker.py), the proxy started inside workerd by
 * Miniflare from the bundle wrangler builds of this folder's wrangler.jsonc, and loopback servers that play
 * what a test must watch (an origin that records what reaches it, a webhook destination).
 */

import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import ts from "typescript";
import { convertV4MiniflareOptions, Miniflare, type V4WorkerOptions } from "miniflare";

// Nothing leaves the machine: no Request.cf lookup at workers.cloudflare.com, no metrics.
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.WRANGLER_SEND_METRICS = "false";

export const ROOT = join(import.meta.dirname, "..");

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest ` +
                              "(tests/integrations/test_cloudflare_worker.py), which starts Voxhook.");
  return value;
}

/** The live Voxhook (the project's test stack on loopback). */
export const VOXHOOK = {
  baseUrl: required("VOXHOOK_BASE_URL").replace(/\/+$/, ""),
  apiKey: required("VOXHOOK_API_KEY"),
  mediaUrl: required("VOXHOOK_MEDIA_URL").replace(/\/+$/, ""),
  fixtures: required("VOXHOOK_FIXTURES"),
};

/** A call straight to Voxhook with its key (what the proxy must not change). */
export function direct(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${VOXHOOK.apiKey}`);
  return fetch(VOXHOOK.baseUrl + path, { ...init, headers });
}

/** A caller: its token (what it holds) and the record the Worker stores (a digest). */
export interface TestCaller {
  token: string;
  record: Record<string, unknown>;
}

export function newCaller(name: string, extra: Record<string, unknown> = {}): TestCaller {
  const token = `ct_${randomBytes(24).toString("base64url")}`;
  return { token, record: { name, token_sha256: sha256Hex(token), ...extra } };
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export interface ProxyOptions {
  origin: string;
  callers?: TestCaller[];
  vars?: Record<string, string>;
  secrets?: Record<string, string>;
  /** Requests per 60 s of the CALLER_RATE_LIMIT binding (else wrangler.jsonc's). */
  rateLimit?: number;
  /** Bind the CALLERS KV namespace. */
  kv?: boolean;
  /** Bind WEBHOOK_QUEUE, with a consumer that writes each message into RELAYED (KV). */
  queue?: boolean;
}

export interface RunningProxy {
  url: string;
  miniflare: Miniflare;
  /** A KV namespace of a Worker in this Miniflare (CALLERS; RELAYED of "queue-reader"). */
  kv(binding: string, worker?: string): Promise<TextKv>;
  close(): Promise<void>;
}

/** The part of a KV namespace the tests use (Miniflare types it with workers-types). */
export interface TextKv {
  get(key: string): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
}

/** The bundle `wrangler deploy` uploads, built by `npm test` before the tests run. */
export const BUNDLE = join(ROOT, ".wrangler", "test-build", "index.js");

/** The deployable configuration, wrangler.jsonc, as wrangler reads it. */
export function wranglerConfig(): WranglerConfig {
  const text = readFileSync(join(ROOT, "wrangler.jsonc"), "utf8");
  const parsed = ts.parseConfigFileTextToJson("wrangler.jsonc", text);
  if (parsed.error) throw new Error("wrangler.jsonc does not parse");
  return parsed.config as WranglerConfig;
}

interface WranglerConfig {
  compatibility_date: string;
  compatibility_flags?: string[];
  vars: Record<string, string>;
  ratelimits: { name: string; namespace_id: string; simple: { limit: number; period: 10 | 60 } }[];
}

/** A test-only Worker that consumes the relay's Queue into its KV namespace RELAYED. */
const QUEUE_READER = `export default {
  async queue(batch, env) {
    for (const message of batch.messages) {
      await env.RELAYED.put(message.body.webhook_id, JSON.stringify(message.body));
      message.ack();
    }
  },
};`;

/**
 * The proxy inside workerd (Miniflare), listening on a loopback port: the bundle wrangler
 * builds from wrangler.jsonc, with that file's compatibility date, vars and rate limits,
 * and the test's origin, callers, secrets and optional bindings. Its outbound requests are
 * workerd's own (nothing in Node stands between the Worker and Voxhook).
 */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  if (!existsSync(BUNDLE)) {
    throw new Error(`${BUNDLE} is missing: run the tests with \`npm test\`, which builds it.`);
  }
  const config = wranglerConfig();
  const ratelimits = Object.fromEntries(config.ratelimits.map((binding) => [binding.name, {
    namespace_id: binding.namespace_id,
    simple: { ...binding.simple, limit: options.rateLimit ?? binding.simple.limit } }]));
  const proxy: V4WorkerOptions = {
    name: "voxhook-edge", modules: true, scriptPath: BUNDLE,
    compatibilityDate: config.compatibility_date, compatibilityFlags: config.compatibility_flags,
    bindings: {
      ...config.vars, VOXHOOK_ORIGIN: options.origin, ...options.vars,
      VOXHOOK_API_KEY: VOXHOOK.apiKey,
      CALLER_TOKENS: JSON.stringify((options.callers ?? []).map((caller) => caller.record)),
      ...options.secrets,
    },
    ratelimits,
    ...(options.kv ? { kvNamespaces: { CALLERS: "callers" } } : {}),
    ...(options.queue ? { queueProducers: { WEBHOOK_QUEUE: { queueName: "voxhook-events" } } } : {}),
  };
  const workers: V4WorkerOptions[] = [proxy];
  if (options.queue) {
    workers.push({ name: "queue-reader", modules: true, script: QUEUE_READER,
                   compatibilityDate: config.compatibility_date,
                   queueConsumers: { "voxhook-events": { maxBatchTimeout: 1 } },
                   kvNamespaces: { RELAYED: "relayed" } });
  }
  const miniflare = new Miniflare(convertV4MiniflareOptions({ host: "127.0.0.1", port: 0, workers, cf: false }));
  const url = await miniflare.ready;
  return {
    url: url.href.replace(/\/+$/, ""), miniflare,
    kv: async (binding, worker) => await miniflare.getKVNamespace(binding, worker) as unknown as TextKv,
    close: () => miniflare.dispose(),
  };
}

/** One request as it reached a loopback server. */
export interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
  /** Whether the whole message arrived (a chunked body with its last chunk). */
  complete: boolean;
}

type Answer = (request: Recorded, response: ServerResponse) => void;

/** A loopback HTTP server that records every request and answers with ``answer``. */
export class Recorder {
  readonly requests: Recorded[] = [];
  private readonly server: Server;
  private waiters: (() => void)[] = [];
  private readonly answer: Answer;

  constructor(answer: Answer = (_, response) => { jsonAnswer(response, 200, { ok: true }); }) {
    this.answer = answer;
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const recorded = { method: request.method ?? "", url: request.url ?? "",
                           headers: request.headers, body: Buffer.concat(chunks),
                           complete: request.complete };
        this.requests.push(recorded);
        for (const wake of this.waiters.splice(0)) wake();
        this.answer(recorded, response);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => { this.server.listen(0, "127.0.0.1", resolve); });
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves once ``count`` requests have arrived (fails after ``timeoutMs``). */
  async waitFor(count: number, timeoutMs = 60_000): Promise<Recorded[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.requests.length} of ${count} requests arrived`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 250);
      });
    }
    return this.requests;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => { this.server.close(() => { resolve(); }); });
  }
}

export function jsonAnswer(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "Content-Type": "application/json" });
  response.end(JSON.stringify(body));
}

/** A loopback port nothing listens on (bound, then closed): an origin that is down. */
export async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => { server.listen(0, "127.0.0.1", resolve); });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** Poll ``url`` with ``token`` until the transcription is final; its last body. */
export async function waitFinal(url: string, token: string,
                                timeoutMs = 180_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    const body = await response.json() as Record<string, unknown>;
    const status = String(body.status);
    if (response.status !== 200) throw new Error(`${url} answered ${response.status}: ${JSON.stringify(body)}`);
    if (["completed", "failed", "cancelled"].includes(status)) return body;
    if (Date.now() > deadline) throw new Error(`${url} still ${status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

export function fixture(name: string): Buffer {
  return readFileSync(join(VOXHOOK.fixtures, name));
}

/** The example Worker of examples/own-worker, built by `npm test` like the proxy. */
export const EXAMPLE_BUNDLE = join(ROOT, "examples", "own-worker", ".wrangler", "example-build", "index.js");

/** examples/own-worker inside workerd on a loopback port, calling the live Voxhook. */
export async function startExample(webhookSecret: string): Promise<RunningProxy> {
  if (!existsSync(EXAMPLE_BUNDLE)) {
    throw new Error(`${EXAMPLE_BUNDLE} is missing: run the tests with \`npm test\`, which builds it.`);
  }
  const miniflare = new Miniflare(convertV4MiniflareOptions({
    host: "127.0.0.1", port: 0, cf: false, name: "voxhook-recordings", modules: true,
    scriptPath: EXAMPLE_BUNDLE, compatibilityDate: wranglerConfig().compatibility_date,
    bindings: { VOXHOOK_URL: VOXHOOK.baseUrl, VOXHOOK_API_KEY: VOXHOOK.apiKey,
                VOXHOOK_WEBHOOK_SECRET: webhookSecret },
    kvNamespaces: { TRANSCRIPTS: "transcripts" },
  }));
  const url = await miniflare.ready;
  return {
    url: url.href.replace(/\/+$/, ""), miniflare,
    kv: async (binding, worker) => await miniflare.getKVNamespace(binding, worker) as unknown as TextKv,
    close: () => miniflare.dispose(),
  };
}
