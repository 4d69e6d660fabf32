import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	INode,
	IWebhookFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

/** Every context of ours that calls Voxhook (node, trigger hooks, webhooks, dropdowns). */
export type VoxhookContext =
	| IExecuteFunctions
	| IHookFunctions
	| ILoadOptionsFunctions
	| IWebhookFunctions;

/** The fields of the `Voxhook API` credential. */
export interface VoxhookCredentials {
	baseUrl: string;
	apiKey: string;
}

/** What a Voxhook call answered: its status, headers and (parsed or raw) body. */
export interface VoxhookResponse<T> {
	statusCode: number;
	headers: Record<string, string | string[] | undefined>;
	body: T;
}

export interface VoxhookRequest {
	method: IHttpRequestMethods;
	/** The path below the base URL, e.g. `/api/v1/transcriptions`. */
	path: string;
	qs?: IDataObject;
	body?: IHttpRequestOptions['body'];
	headers?: IDataObject;
	/** `arraybuffer` for exports (files); JSON otherwise. */
	encoding?: 'arraybuffer';
	/** The item the call is made for, so its errors point at it. */
	itemIndex?: number;
}

/** Voxhook's error body: `{"error": {"code", "message", "fields"}}`. */
interface VoxhookErrorBody {
	error?: { code?: string; message?: string; fields?: Record<string, string[]> };
}

/**
 * The credential's base URL without trailing slashes; a clear error when it is not an
 * http(s) URL, since axios' own message for that ("Invalid URL") names nothing.
 */
export function baseUrlOf(
	node: INode,
	credentials: VoxhookCredentials,
	itemIndex?: number,
): string {
	const raw = String(credentials.baseUrl ?? '').trim();
	const base = raw.replace(/\/+$/, '');
	if (!/^https?:\/\/[^/\s]+/i.test(base)) {
		throw new NodeOperationError(
			node,
			`The Base URL of the Voxhook API credential ("${raw}") is not an http(s) URL`,
			{
				description: 'Set it to where your Voxhook server answers, e.g. http://localhost:8000.',
				itemIndex,
			},
		);
	}
	return base;
}

/**
 * Call Voxhook with the node's credential. HTTP errors become a `NodeApiError` that carries
 * Voxhook's error `code` and `message` (and the fields it names); a server that cannot be
 * reached becomes an error that names the base URL, so a wrong key and a wrong URL read
 * differently.
 */
export async function voxhookRequest<T>(
	context: VoxhookContext,
	request: VoxhookRequest,
): Promise<VoxhookResponse<T>> {
	const node = context.getNode();
	const credentials = await context.getCredentials<VoxhookCredentials>('voxhookApi');
	const baseURL = baseUrlOf(node, credentials, request.itemIndex);
	const options: IHttpRequestOptions = {
		method: request.method,
		baseURL,
		url: request.path,
		qs: request.qs,
		body: request.body,
		headers: request.headers,
		json: request.encoding === undefined,
		encoding: request.encoding,
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
	};
	let response: VoxhookResponse<T>;
	try {
		response = (await context.helpers.httpRequestWithAuthentication.call(
			context,
			'voxhookApi',
			options,
		)) as VoxhookResponse<T>;
	} catch (error) {
		throw unreachable(node, baseURL, error as Error, request.itemIndex);
	}
	if (response.statusCode >= 400) {
		throw apiError(node, response.statusCode, response.body, request.itemIndex);
	}
	return response;
}

/**
 * The error to throw for a failed item: ours already are n8n node errors (they get the item
 * index if they lack one); anything else is wrapped.
 */
export function toNodeError(
	node: INode,
	error: unknown,
	itemIndex?: number,
): NodeApiError | NodeOperationError {
	if (error instanceof NodeApiError || error instanceof NodeOperationError) {
		if (itemIndex !== undefined && error.context.itemIndex === undefined) {
			error.context.itemIndex = itemIndex;
		}
		return error;
	}
	return new NodeOperationError(node, error as Error, { itemIndex });
}

/** The error for an answer of 4xx/5xx, from Voxhook's error body. */
export function apiError(
	node: INode,
	statusCode: number,
	rawBody: unknown,
	itemIndex?: number,
): NodeApiError {
	const body = parseErrorBody(rawBody);
	const code = body.error?.code ?? `http_${statusCode}`;
	const message = body.error?.message ?? `Voxhook answered HTTP ${statusCode}`;
	const fields = body.error?.fields ?? {};
	const fieldLines = Object.entries(fields).map(
		([name, problems]) => `${name}: ${problems.join(' ')}`,
	);
	const hint =
		statusCode === 401
			? 'Check the API key of the Voxhook API credential (it may be wrong or revoked).'
			: undefined;
	const error = new NodeApiError(
		node,
		{ code, message, fields, httpCode: String(statusCode) } as unknown as JsonObject,
		{
			message: `Voxhook: ${message} [${code}]`,
			description: [...fieldLines, ...(hint ? [hint] : [])].join('\n') || undefined,
			httpCode: String(statusCode),
			itemIndex,
		},
	);
	error.context.voxhookErrorCode = code;
	return error;
}

function parseErrorBody(rawBody: unknown): VoxhookErrorBody {
	let body = rawBody;
	if (body instanceof ArrayBuffer || Buffer.isBuffer(body)) {
		body = Buffer.from(body as ArrayBuffer).toString('utf8');
	}
	if (typeof body === 'string') {
		try {
			body = JSON.parse(body);
		} catch {
			return {};
		}
	}
	return typeof body === 'object' && body !== null ? (body as VoxhookErrorBody) : {};
}

/**
 * A request that got no HTTP answer at all: name the URL and the network error. (A
 * NodeOperationError: NodeApiError would replace the message with a generic one.)
 */
function unreachable(
	node: INode,
	baseURL: string,
	error: Error,
	itemIndex?: number,
): NodeOperationError {
	// n8n hands back its own NodeApiError, whose message is generic; the network error is its cause.
	const original = (error.cause instanceof Error ? error.cause : error) as Error & {
		code?: string;
	};
	const networkCode = original.code ?? '';
	const reason =
		networkCode && !original.message.includes(networkCode)
			? `${networkCode}: ${original.message}`
			: original.message;
	// The network error goes in the description: n8n swaps a message that contains a code
	// such as ECONNREFUSED for a generic sentence that would lose the URL.
	const failure = new NodeOperationError(node, `Could not reach Voxhook at ${baseURL}`, {
		description: `${reason}. Check the Base URL of the Voxhook API credential and that the server is running and reachable from n8n.`,
		itemIndex,
	});
	failure.context.voxhookErrorCode = 'unreachable';
	return failure;
}
