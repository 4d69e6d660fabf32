// The trigger's Standard Webhooks check, on the built code: one or two signatures (a secret
// rotation), the 5-minute tolerance, the raw body byte for byte.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';

import { PACKAGE } from '../harness.mjs';

const { verifySignature } = await import(path.join(PACKAGE, 'dist/nodes/shared/signature.js'));

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;
const sign = (key, id, timestamp, body) =>
	`v1,${createHmac('sha256', Buffer.from(key.slice(6), 'base64')).update(`${id}.${timestamp}.${body}`).digest('base64')}`;

const body = Buffer.from('{"type":"transcription.completed","data":{"id":"tr_1"}}');
const now = 1_800_000_000;
const headers = (signature, timestamp = now) => ({ 'webhook-id': 'msg_1', 'webhook-timestamp': String(timestamp), 'webhook-signature': signature });

test('a signature by the secret verifies; another secret does not', () => {
	const key = secret();
	assert.equal(verifySignature([key], headers(sign(key, 'msg_1', now, body)), body, now), null);
	assert.equal(verifySignature([secret()], headers(sign(key, 'msg_1', now, body)), body, now), 'no matching signature');
});

test('during a rotation either of the two signatures is enough', () => {
	const previous = secret();
	const current = secret();
	const both = `${sign(current, 'msg_1', now, body)} ${sign(previous, 'msg_1', now, body)}`;
	assert.equal(verifySignature([previous], headers(both), body, now), null, 'a receiver still on the old secret');
	assert.equal(verifySignature([current], headers(both), body, now), null, 'a receiver already on the new one');
});

test('the body is checked byte for byte, and the id is signed too', () => {
	const key = secret();
	const signature = sign(key, 'msg_1', now, body);
	const reserialised = Buffer.from(JSON.stringify(JSON.parse(body.toString()), null, 1));
	assert.equal(verifySignature([key], headers(signature), reserialised, now), 'no matching signature');
	assert.equal(verifySignature([key], { ...headers(signature), 'webhook-id': 'msg_2' }, body, now), 'no matching signature');
});

test('timestamps older or newer than 5 minutes are refused; missing headers too', () => {
	const key = secret();
	const old = now - 301;
	assert.equal(verifySignature([key], headers(sign(key, 'msg_1', old, body), old), body, now), 'timestamp out of tolerance');
	const edge = now - 300;
	assert.equal(verifySignature([key], headers(sign(key, 'msg_1', edge, body), edge), body, now), null);
	const future = now + 301;
	assert.equal(verifySignature([key], headers(sign(key, 'msg_1', future, body), future), body, now), 'timestamp out of tolerance');
	assert.equal(verifySignature([key], {}, body, now), 'missing headers');
	assert.equal(verifySignature([key], headers('v2,abc'), body, now), 'no matching signature');
});
