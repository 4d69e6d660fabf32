import { createHmac, timingSafeEqual } from 'crypto';

/** How old (or how far in the future) a delivery's timestamp may be: Standard Webhooks' 5 min. */
export const TIMESTAMP_TOLERANCE_S = 300;

/** Why a delivery was refused; `null` when it is authentic. */
export type SignatureProblem =
	| 'missing headers'
	| 'timestamp out of tolerance'
	| 'no matching signature';

/**
 * Check a Standard Webhooks signature over the raw body as received.
 *
 * `webhook-signature` holds one or more space-separated `v1,<base64 HMAC-SHA256>` of
 * `{webhook-id}.{webhook-timestamp}.{body}` under the secret's key (`whsec_` + base64). During a
 * secret rotation Voxhook signs with both secrets, so any one match is enough; each of
 * `secrets` is tried (the one the trigger stored, and a freshly read one).
 */
export function verifySignature(
	secrets: string[],
	headers: Record<string, string | string[] | undefined>,
	rawBody: Buffer,
	nowS: number = Date.now() / 1000,
): SignatureProblem | null {
	const id = single(headers['webhook-id']);
	const timestamp = single(headers['webhook-timestamp']);
	const signatures = single(headers['webhook-signature']);
	if (!id || !timestamp || !signatures) return 'missing headers';
	if (!/^\d+$/.test(timestamp) || Math.abs(nowS - Number(timestamp)) > TIMESTAMP_TOLERANCE_S) {
		return 'timestamp out of tolerance';
	}
	const given = signatures
		.split(' ')
		.filter((entry) => entry.startsWith('v1,'))
		.map((entry) => Buffer.from(entry.slice(3), 'base64'));
	for (const secret of secrets) {
		const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
		const expected = createHmac('sha256', key)
			.update(`${id}.${timestamp}.`)
			.update(rawBody)
			.digest();
		if (
			given.some(
				(signature) => signature.length === expected.length && timingSafeEqual(signature, expected),
			)
		) {
			return null;
		}
	}
	return 'no matching signature';
}

function single(value: string | string[] | undefined): string | undefined {
	return Array.isArray(value) ? value[0] : value;
}
