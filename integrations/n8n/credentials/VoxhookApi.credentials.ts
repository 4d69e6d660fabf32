import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/**
 * A Voxhook server and one of its API keys. The key travels as `Authorization: Bearer …`;
 * the nodes run a richer test (`voxhookApiTest` on the Voxhook node) that names the account,
 * and this request-based test is what n8n falls back to where a node's test is not available.
 */
export class VoxhookApi implements ICredentialType {
	name = 'voxhookApi';

	displayName = 'Voxhook API';

	icon: Icon = { light: 'file:../icons/voxhook.svg', dark: 'file:../icons/voxhook.dark.svg' };

	documentationUrl = 'https://github.com/voxhook/voxhook/tree/main/integrations/n8n#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: 'http://localhost:8000',
			placeholder: 'https://voxhook.example.com',
			description: 'Where your Voxhook server answers (without /api/v1)',
			required: true,
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			placeholder: 'sk_live_…',
			description:
				'A key made with `voxhook keys create --name n8n` or POST /api/v1/keys (shown once)',
			required: true,
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiKey}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/api/v1/me',
			method: 'GET',
		},
	};
}
