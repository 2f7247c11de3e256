/**
 * Signing people in with OpenID Connect: the authorization code flow with PKCE
 * (https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth, RFC 7636, and the OAuth
 * security BCP, RFC 9700), done by oauth4webapi (discovery, state, PKCE, the code's redemption,
 * the ID token's validation), against the identity provider the gateway names in
 * /console/config.json (the organisation's, or the demo one of `npm start`).
 *
 * What the browser keeps: the PKCE verifier, the state and the page to come back to, in
 * sessionStorage between leaving for the provider and coming back (this tab only, removed at
 * once); then the access token and the person's display name (api/session.ts). The code and state
 * leave the address bar as soon as they are read (history.replaceState), so neither the history
 * nor a reload keeps them. Nothing goes to localStorage.
 */
import * as oauth from 'oauth4webapi';
import type { SignInConfig } from './session.js';

export const SIGNED_IN_PATH = '/console/signed-in';
const PENDING_KEY = 'console.signIn';

interface PendingSignIn {
  verifier: string;
  state: string;
  returnTo: string;
}

/** http is allowed for a provider on this machine only (the demo's, or a developer's). */
function requestOptions(issuer: URL): { [oauth.allowInsecureRequests]?: boolean } {
  const local =
    issuer.hostname === 'localhost' || issuer.hostname === '127.0.0.1' || issuer.hostname === '[::1]' || issuer.origin === location.origin;
  return issuer.protocol === 'http:' && local ? { [oauth.allowInsecureRequests]: true } : {};
}

async function discover(config: SignInConfig): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(config.issuer);
  const response = await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...requestOptions(issuer) });
  return oauth.processDiscoveryResponse(issuer, response);
}

/** Only a console page, by path (ids only): never another site, never a query string. */
function safeReturnPath(path: string): string {
  return /^\/console(\/[A-Za-z0-9\-./]*)?$/.test(path) && !path.startsWith(SIGNED_IN_PATH) ? path : '/console/';
}

/** Leaves for the identity provider's sign-in page; comes back to SIGNED_IN_PATH. */
export async function startSignIn(config: SignInConfig, returnTo: string): Promise<void> {
  const as = await discover(config);
  if (as.authorization_endpoint === undefined) throw new Error('The identity provider names no authorization endpoint');
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const pending: PendingSignIn = { verifier, state, returnTo: safeReturnPath(returnTo) };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('redirect_uri', `${location.origin}${SIGNED_IN_PATH}`);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', config.scope);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  // The demo provider: choosing a demo user is the point, so it asks each time (another user after signing out).
  if (config.demo) url.searchParams.set('prompt', 'login');
  location.assign(url.href);
}

export interface SignedIn {
  accessToken: string;
  /** The person's name from the ID token, to show who is signed in (never a patient's). */
  name?: string;
  /** The console page to show now. */
  returnTo: string;
}

/**
 * Back from the identity provider at SIGNED_IN_PATH: checks the state, redeems the code with the
 * PKCE verifier, validates the ID token, and takes the code and state out of the address bar
 * whatever the outcome.
 */
export async function completeSignIn(config: SignInConfig): Promise<SignedIn> {
  const current = new URL(location.href);
  history.replaceState(null, '', SIGNED_IN_PATH);
  const stored = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (stored === null) throw new Error('This sign-in was not started here: start again');
  const pending = JSON.parse(stored) as PendingSignIn;
  const as = await discover(config);
  const client: oauth.Client = { client_id: config.clientId };
  const params = oauth.validateAuthResponse(as, client, current, pending.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    oauth.None(),
    params,
    `${location.origin}${SIGNED_IN_PATH}`,
    pending.verifier,
    requestOptions(new URL(config.issuer)),
  );
  const result = await oauth.processAuthorizationCodeResponse(as, client, response);
  const name = oauth.getValidatedIdTokenClaims(result)?.['name'];
  return { accessToken: result.access_token, ...(typeof name === 'string' ? { name } : {}), returnTo: safeReturnPath(pending.returnTo) };
}

/** Why a sign-in failed, in words for the person (no token or code in it). */
export function signInProblem(error: unknown): string {
  if (error instanceof oauth.AuthorizationResponseError) return `The identity provider refused the sign-in (${error.error}).`;
  if (error instanceof oauth.ResponseBodyError) return `The identity provider refused the sign-in (${error.error}).`;
  if (error instanceof Error && error.message !== '') return error.message;
  return 'The sign-in did not complete.';
}
