// A real n8n from npm (the cached e2e runtime), with n8n-nodes-voxhook installed the way the
// Community Nodes screen installs it (the packed package under <user folder>/.n8n/nodes/
// node_modules), driven through its CLI and REST API.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const PACKAGE = path.resolve(here, '../..');
const BROWSER_ID = 'voxhook-e2e';

async function freePort() {
	return await new Promise((resolve, reject) => {
		const server = createServer();
		server.listen(0, '127.0.0.1', () => {
			const { port } = server.address();
			server.close(() => resolve(port));
		});
		server.on('error', reject);
	});
}

/** `npm pack` the built package and unpack it where n8n keeps community packages. */
function installPackage(userFolder) {
	const packed = mkdtempSync(path.join(tmpdir(), 'voxhook-pack-'));
	execFileSync('npm', ['pack', '--pack-destination', packed], { cwd: PACKAGE, stdio: 'pipe' });
	const tarball = path.join(packed, readdirSync(packed).find((name) => name.endsWith('.tgz')));
	const target = path.join(userFolder, '.n8n', 'nodes', 'node_modules', 'n8n-nodes-voxhook');
	mkdirSync(target, { recursive: true });
	execFileSync('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
	return target;
}

/**
 * fetch, retried once when the server closed a kept-alive connection under it (n8n closes
 * idle sockets; undici may pick one up just then).
 */
export async function fetchOnce(url, options) {
	try {
		return await fetch(url, options);
	} catch (error) {
		if (!/other side closed|ECONNRESET|socket hang up/.test(`${error.cause?.message} ${error.message}`)) throw error;
		return await fetch(url, options);
	}
}

export class N8nInstance {
	constructor(runtime) {
		this.runtime = runtime;
		this.bin = path.join(runtime, 'node_modules', 'n8n', 'bin', 'n8n');
		this.userFolder = mkdtempSync(path.join(tmpdir(), 'n8n-e2e-'));
		this.process = null;
		this.log = [];
		this.cookie = '';
	}

	async prepare() {
		this.port = await freePort();
		this.baseUrl = `http://127.0.0.1:${this.port}`;
		this.packageDir = installPackage(this.userFolder);
		this.env = {
			...process.env,
			N8N_USER_FOLDER: this.userFolder,
			N8N_PORT: String(this.port),
			N8N_LISTEN_ADDRESS: '127.0.0.1',
			N8N_HOST: '127.0.0.1',
			N8N_WEBHOOK_URL: `${this.baseUrl}/`,
			N8N_EDITOR_BASE_URL: `${this.baseUrl}/`,
			N8N_ENCRYPTION_KEY: 'voxhook-e2e-encryption-key-0123456789',
			N8N_SECURE_COOKIE: 'false',
			N8N_DIAGNOSTICS_ENABLED: 'false',
			N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
			N8N_TEMPLATES_ENABLED: 'false',
			N8N_PERSONALIZATION_ENABLED: 'false',
			N8N_LOG_LEVEL: 'info',
			N8N_DEFAULT_BINARY_DATA_MODE: 'filesystem',
			EXECUTIONS_DATA_SAVE_ON_SUCCESS: 'all',
			DB_SQLITE_POOL_SIZE: '2',
		};
	}

	/** Run an n8n CLI command (import, publish) against this instance's database. */
	cli(...args) {
		return execFileSync(process.execPath, [this.bin, ...args], {
			env: this.env, stdio: 'pipe', timeout: 180_000,
		}).toString();
	}

	importJson(kind, data) {
		const file = path.join(this.userFolder, `${kind}-${Date.now()}.json`);
		writeFileSync(file, JSON.stringify(data));
		return this.cli(`import:${kind}`, `--input=${file}`);
	}

	async start() {
		this.log = [];
		this.process = spawn(process.execPath, [this.bin, 'start'], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
		const keep = (chunk) => {
			this.log.push(chunk.toString());
			if (this.log.length > 400) this.log.splice(0, 100);
		};
		this.process.stdout.on('data', keep);
		this.process.stderr.on('data', keep);
		const exited = new Promise((resolve) => this.process.once('exit', resolve));
		const deadline = Date.now() + 120_000;
		while (Date.now() < deadline) {
			const ready = await fetch(`${this.baseUrl}/healthz/readiness`).then((r) => r.ok, () => false);
			if (ready) return;
			if (this.process.exitCode !== null) break;
			await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 500))]);
		}
		throw new Error(`n8n did not become ready:\n${this.log.join('').slice(-4000)}`);
	}

	async stop() {
		if (!this.process || this.process.exitCode !== null) return;
		const exited = new Promise((resolve) => this.process.once('exit', resolve));
		this.process.kill('SIGTERM');
		const killed = setTimeout(() => this.process.kill('SIGKILL'), 30_000);
		await exited;
		clearTimeout(killed);
	}

	/** The owner account (first start), logged in: the REST API's cookie. */
	async setupOwner() {
		const response = await fetch(`${this.baseUrl}/rest/owner/setup`, {
			method: 'POST',
			headers: { 'Content-Type': 'application/json', 'browser-id': BROWSER_ID },
			body: JSON.stringify({ email: 'owner@example.com', firstName: 'E2E', lastName: 'Owner', password: 'Voxhook-e2e-1' }),
		});
		if (!response.ok) throw new Error(`owner setup: ${response.status} ${await response.text()}`);
		this.cookie = response.headers.getSetCookie().map((cookie) => cookie.split(';')[0]).join('; ');
	}

	async rest(method, restPath, body) {
		const response = await fetchOnce(`${this.baseUrl}/rest${restPath}`, {
			method,
			headers: { 'Content-Type': 'application/json', 'browser-id': BROWSER_ID, cookie: this.cookie },
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await response.text();
		let parsed = text;
		try {
			parsed = JSON.parse(text);
		} catch {}
		return { status: response.status, body: parsed?.data ?? parsed };
	}

	/** The executions of a workflow (newest first), as the editor lists them. */
	async executions(workflowId) {
		const filter = encodeURIComponent(JSON.stringify({ workflowId }));
		const { status, body } = await this.rest('GET', `/executions?filter=${filter}&limit=50`);
		if (status !== 200) throw new Error(`executions: ${status} ${JSON.stringify(body)}`);
		return body.results;
	}

	/** One execution's run data, unflattened. */
	async executionData(id) {
		const { body } = await this.rest('GET', `/executions/${id}`);
		const { parse } = await import(path.join(this.runtime, 'node_modules', 'flatted', 'cjs', 'index.js'));
		return { ...body, data: typeof body.data === 'string' ? parse(body.data) : body.data };
	}

	tail() {
		return this.log.join('').slice(-6000);
	}
}
