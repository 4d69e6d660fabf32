/**
 * The scenario blueprints' requests, replayed against a live Voxhook: every HTTP module's
 * method, URL, headers and body, with the placeholders a user replaces (server, key, Make
 * webhook URLs) set to the live server and loopback receivers, and each {{n.field}} mapping
 * filled from what module n outputs (a real Voxhook delivery for a custom webhook; for
 * Google Drive, a stand-in output whose link points at the test media server). Google Drive
 * and Slack themselves cannot be reached here: their modules are type-checked only.
 */

import test from 'node:test';
import assert from 'node:assert/strict';

import { readJson } from './support/replay.ts';
import { API_KEY, BASE_URL, MEDIA_URL, api, startReceiver, waitForEnd } from './support/live.ts';

type Node = { id: number; module: string; mapper?: Record<string, any>; filter?: { conditions: { a: string; o: string; b: string }[][] } };
type Blueprint = { flow: Node[] };

const blueprint = (name: string) => readJson(`blueprints/${name}.blueprint.json`) as Blueprint;

/** Fill {{n.path}} from the outputs of earlier modules; any other formula is refused. */
const map = (text: string, outputs: Record<number, unknown>): string => text.replace(/\{\{(.*?)\}\}/g, (_, formula: string) => {
  const match = /^(\d+)\.([\w.]+)$/.exec(formula);
  if (!match) throw new Error(`mapping {{${formula}}} is not a plain module reference`);
  let value: any = outputs[Number(match[1])];
  for (const part of match[2]!.split('.')) value = value?.[part];
  if (value === undefined) throw new Error(`{{${formula}}}: module ${match[1]} outputs no ${match[2]}`);
  return String(value);
});

/** The request an HTTP module makes, placeholders replaced, sent to the live server. */
const runHttp = async (node: Node, outputs: Record<number, unknown>, hooks: Record<string, string>) => {
  const live = (text: string) => Object.entries(hooks).reduce((result, [placeholder, url]) => result.replaceAll(placeholder, url),
    map(text, outputs).replaceAll('https://voxhook.example.com', BASE_URL).replaceAll('sk_live_REPLACE_WITH_YOUR_KEY', API_KEY));
  assert.equal(node.module, 'http:ActionSendData');
  const mapper = node.mapper!;
  const headers = Object.fromEntries((mapper.headers as { name: string; value: string }[]).map((header) => [header.name, live(header.value)]));
  if (mapper.contentType) headers['Content-Type'] = mapper.contentType;
  const response = await fetch(live(mapper.url), { method: String(mapper.method).toUpperCase(), headers,
    body: mapper.data === undefined ? undefined : live(mapper.data) });
  const text = await response.text();
  return { status: response.status, body: (response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
};

/** Make's text:equal filter, the only operator the blueprints use. */
const passes = (node: Node, outputs: Record<number, unknown>) => (node.filter?.conditions ?? [[]]).some((all) =>
  all.every((condition) => {
    assert.equal(condition.o, 'text:equal');
    return map(condition.a, outputs) === condition.b;
  }));

test('transcribe-with-webhook → receive-transcript: the webhook gets the transcript, the export follows', async () => {
  const receiver = await startReceiver();
  try {
    const send = blueprint('transcribe-with-webhook').flow[0]!;
    const hookUrl = receiver.url('/make/receive-transcript');
    const created = await runHttp({ ...send, mapper: { ...send.mapper, data: send.mapper!.data.replace('https://example.com/call.mp3', `${MEDIA_URL}/jfk.flac`) } },
      {}, { 'https://hook.eu1.make.com/REPLACE_WITH_YOUR_RECEIVE_TRANSCRIPT_WEBHOOK': hookUrl });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.webhook_url, hookUrl);
    assert.equal(created.body.language, 'en');

    const delivered = JSON.parse((await receiver.about(created.body.id)).body.toString('utf8'));
    assert.equal(delivered.status, 'completed');
    const [, exportNode] = blueprint('receive-transcript').flow;
    const outputs = { 1: delivered };
    assert.ok(passes(exportNode!, outputs));
    assert.equal(passes(exportNode!, { 1: { ...delivered, status: 'failed' } }), false);
    const exported = await runHttp(exportNode!, outputs, {});
    assert.equal(exported.status, 200);
    assert.match(String(exported.body), /^1\r?\n00:00:\d\d,\d{3} --> /);
  } finally {
    await receiver.close();
  }
});

test('drive-to-voxhook → transcript-to-slack: the Drive link is transcribed, the Slack text maps from the delivery', async () => {
  const receiver = await startReceiver();
  try {
    const [drive, send] = blueprint('drive-to-voxhook').flow;
    assert.equal(drive!.module, 'google-drive:watchFilesInAFolder');
    const driveOutput = { id: '1AbC', name: 'call.flac', webViewLink: `${MEDIA_URL}/jfk.flac` };
    const hookUrl = receiver.url('/make/transcript-to-slack');
    const created = await runHttp(send!, { 1: driveOutput },
      { 'https://hook.eu1.make.com/REPLACE_WITH_YOUR_TRANSCRIPT_TO_SLACK_WEBHOOK': hookUrl });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.url, driveOutput.webViewLink);

    const delivered = JSON.parse((await receiver.about(created.body.id)).body.toString('utf8'));
    const finished = await waitForEnd(created.body.id);
    assert.deepEqual(delivered, (await api('GET', `/transcriptions/${finished.id}`)).body);
    const [, slack] = blueprint('transcript-to-slack').flow;
    assert.ok(passes(slack!, { 1: delivered }));
    const text = map(slack!.mapper!.text, { 1: delivered });
    assert.ok(text.includes(delivered.result.full_transcript) && delivered.result.full_transcript.length > 0, text);
  } finally {
    await receiver.close();
  }
});
