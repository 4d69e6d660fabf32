/**
 * Replays what a module's communication describes against a live Voxhook, the way Make's
 * runtime would run it: the base's baseUrl, headers and error message, each request's
 * condition, url, method, headers, qs and body (json or multipart/form-data) with the
 * module's parameters substituted, then valid, error, temp, repeat (bounded by its limit),
 * iterate, limit, pagination and output. A wrong path or field makes Voxhook answer with an
 * error, which fails the replay with the message the module would show.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { type Context, evaluate, holds } from './iml.ts';

export const APP_DIR = join(import.meta.dirname, '..', '..');

export const readJson = (path: string): unknown => JSON.parse(readFileSync(join(APP_DIR, path), 'utf8'));

type Json = Record<string, unknown>;

export type Request = {
  url?: string; output?: unknown; method?: string; headers?: unknown; qs?: unknown; body?: unknown; type?: string;
  condition?: unknown; temp?: unknown;
  repeat?: { condition: string; delay: number; limit: number };
  pagination?: { condition?: string; qs?: Json };
  response?: { output?: unknown; valid?: unknown; error?: { message: string }; temp?: unknown;
    iterate?: unknown; limit?: unknown; type?: string; metadata?: { value: string }; data?: unknown };
};

export type Base = { baseUrl: string; headers?: Json; response?: { error?: { message: string } } };

/** What Make would show: the module failed with this message. */
export class ModuleError extends Error {}

export type Replay = {
  outputs: unknown[];
  /** Each request actually sent: method and URL. */
  sent: string[];
  /** The last response's evaluated metadata/data directives (connections, webhook attach). */
  metadata?: unknown;
  data?: unknown;
};

export type ReplayOptions = {
  /** Make's context: parameters, connection, webhook, … */
  context: Context;
  base?: Base;
  /** Test seam: a smaller page than the module asks for, so pagination happens with few items. */
  pageSize?: number;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const encodeBody = (type: string | undefined, body: unknown): { body?: BodyInit; contentType?: string } => {
  if (body === undefined) return {};
  if (type === 'multipart/form-data') {
    const form = new FormData();
    for (const [key, value] of Object.entries(body as Json)) {
      if (value && typeof value === 'object' && 'value' in (value as Json)) {
        const file = value as { value: Uint8Array; options?: { filename?: string } };
        form.append(key, new Blob([new Uint8Array(file.value)]), file.options?.filename ?? 'file');
      } else {
        form.append(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
      }
    }
    return { body: form };
  }
  if (type === 'text' || type === 'string') return { body: String(body), contentType: 'text/plain' };
  return { body: JSON.stringify(body), contentType: 'application/json' };
};

const send = async (request: Request, context: Context, base: Base | undefined, extraQs: Json) => {
  const url = String(evaluate(request.url, context));
  const absolute = /^https?:\/\//.test(url) ? url : `${String(evaluate(base?.baseUrl, context))}${url}`;
  const target = new URL(absolute);
  const qs = { ...(evaluate(request.qs ?? {}, context) as Json), ...extraQs };
  for (const [key, value] of Object.entries(qs)) {
    if (value !== undefined && value !== null && value !== '') target.searchParams.set(key, String(value));
  }
  const method = String(evaluate(request.method ?? 'GET', context));
  const { body, contentType } = encodeBody(request.type, evaluate(request.body, context));
  const headers: Record<string, string> = {
    ...(evaluate(base?.headers ?? {}, context) as Record<string, string>),
    ...(evaluate(request.headers ?? {}, context) as Record<string, string>),
  };
  if (contentType && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
    headers['Content-Type'] = contentType;
  }
  const response = await fetch(target, { method, headers, body: method === 'GET' ? undefined : body });
  const text = await response.text();
  let parsed: unknown = text;
  if (request.response?.type !== 'text' && (response.headers.get('content-type') ?? '').includes('json')) {
    parsed = JSON.parse(text);
  }
  return { line: `${method} ${target.pathname}${target.search}`, statusCode: response.status,
    headers: Object.fromEntries(response.headers.entries()), body: parsed };
};

/** Run a communication (one request or a chain) and answer what the module would output. */
export const replay = async (communication: Request | Request[], options: ReplayOptions): Promise<Replay> => {
  const requests = Array.isArray(communication) ? communication : [communication];
  const result: Replay = { outputs: [], sent: [] };
  let context: Context = { ...options.context, temp: {} };
  for (const request of requests) {
    if (!holds(request.condition, context)) continue;
    if (request.temp) context = { ...context, temp: { ...(context.temp as Json), ...(evaluate(request.temp, context) as Json) } };
    if (request.url === undefined) { // a request-less step: it only outputs
      result.outputs = [evaluate(request.output, context)];
      continue;
    }
    const limit = request.response?.limit === undefined ? Infinity : Number(evaluate(request.response.limit, context));
    let pageQs: Json = options.pageSize && request.pagination ? { limit: options.pageSize } : {};
    const items: unknown[] = [];
    for (;;) {
      let answer = await send(request, context, options.base, pageQs);
      result.sent.push(answer.line);
      let attempts = 1;
      const check = (): Context => {
        const scope = { ...context, body: answer.body, headers: answer.headers, statusCode: answer.statusCode };
        if (answer.statusCode >= 400) {
          const message = request.response?.error?.message ?? options.base?.response?.error?.message ?? 'HTTP {{statusCode}}';
          throw new ModuleError(String(evaluate(message, scope)));
        }
        return scope;
      };
      let scope = check();
      while (request.repeat && holds(request.repeat.condition, scope) && attempts < request.repeat.limit) {
        await sleep(request.repeat.delay);
        answer = await send(request, context, options.base, pageQs);
        result.sent.push(answer.line);
        attempts += 1;
        scope = check();
      }
      if (!holds(request.response?.valid, scope)) {
        throw new ModuleError(String(evaluate(request.response?.error?.message ?? 'invalid response', scope)));
      }
      if (request.response?.temp) {
        context = { ...context, temp: { ...(context.temp as Json), ...(evaluate(request.response.temp, scope) as Json) } };
      }
      if (request.response?.metadata) result.metadata = evaluate(request.response.metadata, scope);
      if (request.response?.data) result.data = evaluate(request.response.data, scope);
      if (request.response?.iterate !== undefined) {
        for (const item of (evaluate(request.response.iterate, scope) as unknown[]) ?? []) {
          if (items.length >= limit) break;
          items.push(evaluate(request.response.output ?? '{{item}}', { ...scope, item }));
        }
      } else if (request.response?.output !== undefined) {
        items.push(evaluate(request.response.output, scope));
      }
      if (!request.pagination || items.length >= limit || !holds(request.pagination.condition, scope)) break;
      pageQs = { ...pageQs, ...(evaluate(request.pagination.qs ?? {}, scope) as Json) };
    }
    if (items.length) result.outputs = items;
  }
  return result;
};
