import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface IdpAccount {
  readonly sub: string;
  readonly email?: string;
  readonly emailVerified?: boolean;
  readonly name?: string;
}

export interface TestIdp {
  /** `http://127.0.0.1:<port>`: the issuer, whose discovery document is at /.well-known/openid-configuration. */
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The account the next login at this IdP signs in as (the stand-in for a person typing a password). */
  loginAs(account: IdpAccount): void;
  /**
   * Plays the browser from the authorization URL Keel redirected to, through the IdP's login
   * and consent, and returns the URL the IdP redirects back to (Keel's callback with code and state).
   */
  authorize(authorizationUrl: string): Promise<URL>;
  close(): Promise<void>;
}

async function quietly<T>(work: () => Promise<T>): Promise<T> {
  const { warn, info } = console;
  console.warn = () => {};
  console.info = () => {};
  try {
    return await work();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

/** A browser's cookie jar for one host, enough for the IdP's interaction cookies. */
function cookieJar() {
  const cookies = new Map<string, string>();
  return {
    store(response: Response) {
      for (const header of response.headers.getSetCookie()) {
        const [pair] = header.split(';');
        const separator = pair!.indexOf('=');
        cookies.set(pair!.slice(0, separator).trim(), pair!.slice(separator + 1).trim());
      }
    },
    header: () => [...cookies].map(([name, value]) => `${name}=${value}`).join('; '),
  };
}

/**
 * A real OpenID Connect provider (the `oidc-provider` package, certified by the OpenID
 * Foundation) on 127.0.0.1, with one confidential client whose redirect URI is `redirectUri`.
 * Login and consent are answered at once for the account set with `loginAs`.
 */
export async function startTestIdp(options: { redirectUri: string }): Promise<TestIdp> {
  const accounts = new Map<string, IdpAccount>();
  let next: IdpAccount | undefined;
  const clientId = 'keel-test-client';
  const clientSecret = randomBytes(24).toString('hex');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };

  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // oidc-provider prints warnings meant for production deployments (Node 22 recommended, the
  // in-memory adapter): none apply to a throwaway provider in a test, so they are not printed.
  const provider = await quietly(async () => {
    const { default: Provider } = await import('oidc-provider');
    return new Provider(issuer, {
      clients: [
        {
          client_id: clientId,
          client_secret: clientSecret,
          redirect_uris: [options.redirectUri],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: [jwk as never] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      findAccount: async (_ctx, sub) => {
        const account = accounts.get(sub);
        if (!account) return undefined;
        return {
          accountId: sub,
          claims: async () => ({
            sub,
            ...(account.email === undefined ? {} : { email: account.email }),
            ...(account.emailVerified === undefined ? {} : { email_verified: account.emailVerified }),
            ...(account.name === undefined ? {} : { name: account.name }),
          }),
        };
      },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      pkce: { required: () => true },
      cookies: { keys: [randomBytes(16).toString('hex')] },
      ttl: {
        AccessToken: 600,
        AuthorizationCode: 60,
        Grant: 600,
        IdToken: 600,
        Interaction: 600,
        Session: 600,
      },
    });
  });

  const callback = provider.callback();
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (!request.url?.startsWith('/interaction/')) {
      callback(request, response);
      return;
    }
    // The person logs in as `next` and consents to what the client asked for.
    (async () => {
      const details = await provider.interactionDetails(request, response);
      const account = next;
      if (!account) throw new Error('call loginAs() before the login');
      accounts.set(account.sub, account);
      const grant = new provider.Grant({ accountId: account.sub, clientId });
      grant.addOIDCScope(String(details.params.scope));
      const grantId = await grant.save();
      await provider.interactionFinished(
        request,
        response,
        { login: { accountId: account.sub }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    })().catch((error: Error) => {
      response.statusCode = 500;
      response.end(error.message);
    });
  });

  return {
    issuer,
    clientId,
    clientSecret,
    loginAs(account) {
      next = account;
    },
    async authorize(authorizationUrl) {
      const jar = cookieJar();
      let url = new URL(authorizationUrl);
      // Follow the IdP's redirects (authorize → interaction → resume → client) like a browser.
      for (let hop = 0; hop < 10; hop += 1) {
        if (url.origin !== issuer) return url;
        const response = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
        jar.store(response);
        const location = response.headers.get('location');
        if (!location) throw new Error(`the IdP answered ${response.status}: ${await response.text()}`);
        await response.arrayBuffer();
        url = new URL(location, url);
      }
      throw new Error('too many redirects at the IdP');
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
