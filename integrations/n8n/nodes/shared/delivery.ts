import type { IWebhookFunctions } from 'n8n-workflow';

import { verifySignature } from './signature';
import type { SignatureProblem } from './signature';
import { voxhookRequest } from './transport';

/** A delivery that passed, with its parsed body and the secret that verified it. */
export type Delivery =
	| { ok: true; body: unknown; secret: string }
	| { ok: false; problem: SignatureProblem | 'not JSON' };

/**
 * Read the raw body of the webhook request and verify its Standard Webhooks signature.
 *
 * `knownSecret` (the trigger's stored one) is tried first; when it does not match, the
 * account's current secret is read from Voxhook (`GET /api/v1/webhook_secret`) and tried,
 * so a rotation made after the trigger subscribed does not lock it out. The body is parsed
 * only after it is verified.
 */
export async function verifyDelivery(
	context: IWebhookFunctions,
	knownSecret?: string,
): Promise<Delivery> {
	const request = context.getRequestObject() as ReturnType<
		IWebhookFunctions['getRequestObject']
	> & {
		rawBody?: Buffer;
		readRawBody?: () => Promise<void>;
	};
	if (!request.rawBody && request.readRawBody) await request.readRawBody();
	const raw = request.rawBody ?? Buffer.from(JSON.stringify(request.body ?? ''));
	const headers = context.getHeaderData() as Record<string, string | string[] | undefined>;
	let secret = knownSecret;
	let problem = secret ? verifySignature([secret], headers, raw) : 'no matching signature';
	if (problem === 'no matching signature') {
		const { body } = await voxhookRequest<{ secret: string }>(context, {
			method: 'GET',
			path: '/api/v1/webhook_secret',
		});
		if (body.secret !== knownSecret) {
			secret = body.secret;
			problem = verifySignature([secret], headers, raw);
		}
	}
	if (problem !== null || !secret)
		return { ok: false, problem: problem ?? 'no matching signature' };
	try {
		return { ok: true, body: JSON.parse(raw.toString('utf8')), secret };
	} catch {
		return { ok: false, problem: 'not JSON' };
	}
}
