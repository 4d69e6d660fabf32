/** The live Voxhook the pytest harness started (tests/integrations/test_make.py), and a receiver. */

import http from 'node:http';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest (tests/integrations/test_make.py)`);
  return value;
};

export const BASE_URL = env('VOXHOOK_BASE_URL');
export const API_KEY = env('VOXHOOK_API_KEY');
export const MEDIA_URL = env('VOXHOOK_MEDIA_URL');
export const FIXTURES = env('VOXHOOK_FIXTURES');

/** The connection as Make holds it once the user has connected. */
export const connection = { baseUrl: BASE_URL, apiKey: API_KEY };

export type Transcription = { id: string; status: string; result?: { full_transcript: string } | null;
  error?: { code: string; message: string } | null; [key: string]: unknown };

export const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
  const response = await fetch(`${BASE_URL}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${API_KEY}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
};

export const waitForEnd = async (id: string): Promise<Transcription> => {
  const deadline = Date.now() + 120000;
  while (Date.now() < deadline) {
    const { body } = await api('GET', `/transcriptions/${id}`);
    if (['completed', 'failed', 'cancelled'].includes(body.status)) return body;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`transcription ${id} did not end in time`);
};

export const finishedTranscription = async (file = 'jfk.flac'): Promise<Transcription> => {
  const created = await api('POST', '/transcriptions', { source: 'external_url', url: `${MEDIA_URL}/${file}`, language: 'en' });
  return waitForEnd(created.body.id);
};

export type Received = { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer };

/** A loopback server standing in for a Make webhook URL: records requests, answers 200. */
export const startReceiver = async () => {
  const received: Received[] = [];
  const waiting: ((request: Received) => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}');
      const waiter = waiting.shift();
      if (waiter) waiter(request); else received.push(request);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const next = (): Promise<Received> => new Promise((resolve, reject) => {
    const early = received.shift();
    if (early) return resolve(early);
    const timer = setTimeout(() => reject(new Error('no request reached the receiver in time')), 60000);
    waiting.push((request) => { clearTimeout(timer); resolve(request); });
  });
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    /** The next request whose JSON is about transcription `id` (a bare GET body or an envelope). */
    about: async (id: string): Promise<Received> => {
      for (;;) {
        const request = await next();
        const body = JSON.parse(request.body.toString('utf8'));
        if ((body.data ? body.data.id : body.id) === id) return request;
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};
