/**
 * Tokens of an organisation's own identity provider (AUTH_TRUSTED_ISSUERS, issue 10's option and
 * the console's OpenID Connect sign-in, issue 14): people sign in there, and the access token it
 * gives them is accepted by the gateway the same way as its own SMART tokens, mapped to the same
 * Caller. Each token is verified by jose against the issuer's JWKS: an asymmetric signature (never
 * `none`, never an HMAC), `exp`, `aud` (this gateway's FHIR base unless the entry names another)
 * and `iss`. The role and the tenant come from claims the identity provider's administrators set,
 * or from the entry's map of users: never from anything the person can edit here, and never a
 * tenant outside the entry's `tenants`. docs/security.md.
 */
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import type { Caller } from './caller.js';
import { tokenRefusalReason } from './jwt-reading.js';
import { schemaIssues } from '../directory/rules/json-document-issues.js';
import { DocumentIssuesError } from './document-issues-error.js';
import { documentSchemaValidators } from '../fhir/validation/document-schemas.js';

type PersonRole = 'coordinator' | 'operator';

export type IssuerAccess =
  | { from: 'claims'; roleClaim: string; roleValues?: Record<string, PersonRole>; tenantClaim?: string; tenant?: string }
  | { from: 'users'; users: Record<string, { role: PersonRole; tenant?: string }> };

/** One entry of AUTH_TRUSTED_ISSUERS, as profiles/auth-trusted-issuers.schema.json describes it. */
export interface TrustedIssuerEntry {
  issuer: string;
  name?: string;
  jwksUrl: string;
  audience?: string;
  subjectClaim: string;
  tenants?: string[];
  demoOnly?: boolean;
  access: IssuerAccess;
}

export interface TrustedIssuer {
  /** Whether a token's `iss` is this issuer's; the embedded demo issuer lives at the gateway's own origin. */
  issuerAt(gatewayOrigin: string): string;
  readonly name: string;
  readonly entry: Omit<TrustedIssuerEntry, 'issuer' | 'jwksUrl'>;
  readonly keys: JWTVerifyGetKey;
}

/**
 * What a person's token is granted, by role: what the console needs and the role allows
 * (ROLE_PERMISSIONS in src/http/route-table.ts decides first). SMART `user/` scopes: a person's.
 */
export const PERSON_SCOPES: Record<PersonRole, readonly string[]> = {
  coordinator: ['user/*.rs', 'user/Task.u', 'user/Appointment.cu'],
  operator: [
    'user/*.rs',
    'user/Location.cu',
    'user/Organization.cu',
    'user/HealthcareService.cu',
    'user/PractitionerRole.cu',
    'user/InsurancePlan.cu',
    'user/OrganizationAffiliation.cu',
    'user/Endpoint.cu',
  ],
};

/** Asymmetric algorithms only: `none` and HMACs (keyed with a public key, say) are refused by jose. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** Leeway for the identity provider's clock and ours disagreeing a little. */
const CLOCK_TOLERANCE_SECONDS = 30;

const validateIssuers = documentSchemaValidators.trustedIssuers;

export class TrustedIssuersError extends DocumentIssuesError {
  override readonly name = 'TrustedIssuersError';
}

/**
 * Validates AUTH_TRUSTED_ISSUERS; throws with every problem found (schema, an issuer listed
 * twice, a coordinator who could have no tenant, a demo issuer in production, plain http in production).
 */
export function parseTrustedIssuers(document: unknown, where: string, options: { production: boolean }): TrustedIssuerEntry[] {
  if (!validateIssuers(document)) throw new TrustedIssuersError(where, schemaIssues(validateIssuers.errors ?? [], 'trusted issuers list'));
  const entries = document as TrustedIssuerEntry[];
  const issues: OperationOutcomeIssue[] = [];
  const problem = (expression: string, diagnostics: string, code: OperationOutcomeIssue['code'] = 'business-rule'): void => {
    issues.push({ severity: 'error', code, diagnostics, expression: [expression] });
  };
  entries.forEach((entry, index) => {
    if (entries.findIndex((other) => other.issuer === entry.issuer) !== index)
      problem(`[${index}].issuer`, `the issuer ${entry.issuer} is listed twice`, 'duplicate');
    if (options.production && entry.demoOnly === true)
      problem(`[${index}].demoOnly`, 'a demo issuer (its keys are public) is refused with NODE_ENV=production');
    if (options.production && entry.jwksUrl.startsWith('http:'))
      problem(`[${index}].jwksUrl`, 'must be an https URL with NODE_ENV=production');
    if (
      entry.access.from === 'claims' &&
      entry.access.tenantClaim === undefined &&
      entry.access.tenant === undefined &&
      entry.tenants?.length !== 1
    ) {
      problem(`[${index}].access`, 'a coordinator needs a tenant: give tenantClaim, tenant, or exactly one entry in tenants', 'required');
    }
    for (const [subject, user] of Object.entries(entry.access.from === 'users' ? entry.access.users : {})) {
      if (user.tenant !== undefined && entry.tenants !== undefined && !entry.tenants.includes(user.tenant)) {
        problem(`[${index}].access.users.${subject}.tenant`, `${user.tenant} is not among this issuer's tenants`);
      }
    }
  });
  if (issues.length > 0) throw new TrustedIssuersError(where, issues);
  return entries;
}

function issuerOf(entry: TrustedIssuerEntry, keys: JWTVerifyGetKey, issuerAt: (origin: string) => string): TrustedIssuer {
  const { issuer: _issuer, jwksUrl: _jwksUrl, ...rest } = entry;
  return { issuerAt, name: entry.name ?? new URL(entry.issuer).host, entry: rest, keys };
}

/** An identity provider whose keys are at its jwksUrl (jose caches them and refetches on an unknown kid, at most every 30 s). */
export function remoteTrustedIssuer(entry: TrustedIssuerEntry): TrustedIssuer {
  return issuerOf(
    entry,
    createRemoteJWKSet(new URL(entry.jwksUrl), { cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 }),
    () => entry.issuer,
  );
}

/**
 * The embedded demo identity provider (src/auth/demo-identity-provider.ts): its issuer is the
 * gateway's own origin + `path`, its public keys are given here (no request to itself).
 */
export function embeddedTrustedIssuer(
  entry: Omit<TrustedIssuerEntry, 'issuer' | 'jwksUrl'>,
  jwks: JSONWebKeySet,
  path: string,
): TrustedIssuer {
  return { issuerAt: (origin) => `${origin}${path}`, name: entry.name ?? 'demo-idp', entry, keys: createLocalJWKSet(jwks) };
}

export type PersonTokenCheck = { kind: 'caller'; caller: Caller } | { kind: 'refused'; reason: string };

function stringValues(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

/** The role and tenant a verified token's claims give, by the entry's rules; a reason when none. */
export function personAccess(
  entry: TrustedIssuer['entry'],
  payload: JWTPayload,
): { subject: string; role: PersonRole; tenant?: string } | { refused: string } {
  const subject = payload[entry.subjectClaim];
  if (typeof subject !== 'string' || subject === '') return { refused: `the token has no ${entry.subjectClaim} claim naming the person` };
  let role: PersonRole | undefined;
  let tenant: string | undefined;
  if (entry.access.from === 'users') {
    const user = Object.hasOwn(entry.access.users, subject) ? entry.access.users[subject] : undefined;
    if (user === undefined) return { refused: 'the person has no role at this gateway' };
    role = user.role;
    tenant = user.tenant;
  } else {
    const access = entry.access;
    const values = access.roleValues ?? { coordinator: 'coordinator', operator: 'operator' };
    const roles = new Set(
      stringValues(payload[access.roleClaim]).flatMap((value) => (Object.hasOwn(values, value) ? [values[value]!] : [])),
    );
    if (roles.size === 0) return { refused: 'the token names no role of this gateway' };
    if (roles.size > 1) return { refused: 'the token names more than one role of this gateway' };
    role = [...roles][0]!;
    const claimed = access.tenantClaim !== undefined ? payload[access.tenantClaim] : undefined;
    if (access.tenantClaim !== undefined && claimed !== undefined && typeof claimed !== 'string')
      return { refused: `the token's ${access.tenantClaim} claim is not one tenant` };
    tenant = (claimed as string | undefined) ?? access.tenant ?? (entry.tenants?.length === 1 ? entry.tenants[0] : undefined);
  }
  if (tenant !== undefined && entry.tenants !== undefined && !entry.tenants.includes(tenant))
    return { refused: 'the token names a tenant this issuer may not speak for' };
  if (role === 'coordinator' && tenant === undefined) return { refused: 'a coordinator token must name a tenant' };
  return { subject, role, ...(tenant !== undefined ? { tenant } : {}) };
}

/**
 * Verifies a person's token from a trusted issuer (already picked by the token's unverified
 * `iss`) and maps it to the Caller. The reason of a refusal is safe to log and to answer with: it
 * names neither the person nor the token.
 */
export async function verifyPersonToken(
  issuer: TrustedIssuer,
  token: string,
  context: { gatewayOrigin: string; fhirBase: string; now: Date },
): Promise<PersonTokenCheck> {
  try {
    const { payload } = await jwtVerify(token, issuer.keys, {
      algorithms: ALGORITHMS,
      issuer: issuer.issuerAt(context.gatewayOrigin),
      audience: issuer.entry.audience ?? context.fhirBase,
      currentDate: context.now,
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp'],
    });
    const access = personAccess(issuer.entry, payload);
    if ('refused' in access) return { kind: 'refused', reason: access.refused };
    const caller: Caller = {
      clientId: `${issuer.name}/${access.subject}`,
      role: access.role,
      ...(access.tenant !== undefined ? { tenant: access.tenant } : {}),
      scopes: PERSON_SCOPES[access.role],
    };
    return { kind: 'caller', caller };
  } catch (error) {
    const reason = tokenRefusalReason(error);
    if (reason !== undefined) return { kind: 'refused', reason };
    if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWSSignatureVerificationFailed)
      return { kind: 'refused', reason: "the access token's signature is not the issuer's" };
    if (error instanceof errors.JOSEError) return { kind: 'refused', reason: 'the access token is not valid' };
    return { kind: 'refused', reason: "the issuer's keys could not be fetched" };
  }
}
