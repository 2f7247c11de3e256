/**
 * SMART scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html): v2
 * `system/Task.rs` (c create, r read, u update, d delete, s search) and the v1 forms
 * `system/Task.read` / `.write` / `.*`, read the same way.
 */
export type Interaction = 'c' | 'r' | 'u' | 'd' | 's';

export interface ParsedScope {
  resourceType: string;
  interactions: ReadonlySet<Interaction>;
}

const SCOPE = /^(system|user)\/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|[cruds]+)$/;

export function parseScope(scope: string): ParsedScope | undefined {
  const match = SCOPE.exec(scope);
  if (!match) return undefined;
  const [, , resourceType, rights] = match as unknown as [string, string, string, string];
  const interactions: Interaction[] =
    rights === '*'
      ? ['c', 'r', 'u', 'd', 's']
      : rights === 'read'
        ? ['r', 's']
        : rights === 'write'
          ? ['c', 'u', 'd']
          : (rights.split('') as Interaction[]);
  return { resourceType, interactions: new Set(interactions) };
}

/** Whether the granted scopes allow this interaction on this resource type. */
export function scopesPermit(scopes: readonly string[], resourceType: string, interaction: Interaction): boolean {
  return scopes.some((scope) => {
    const parsed = parseScope(scope);
    return (
      parsed !== undefined && (parsed.resourceType === '*' || parsed.resourceType === resourceType) && parsed.interactions.has(interaction)
    );
  });
}

/**
 * The scopes to grant: each asked scope reduced to what the client's registered scopes allow
 * (per resource type and interaction), in v2 form; scopes nothing allows are dropped.
 */
export function grantScopes(asked: readonly string[], allowed: readonly string[]): string[] {
  const granted: string[] = [];
  for (const scope of asked) {
    const parsed = parseScope(scope);
    if (!parsed) continue;
    const context = scope.split('/')[0]!;
    const permitted = [...parsed.interactions].filter((interaction) =>
      parsed.resourceType === '*'
        ? allowed.some((a) => parseScope(a)?.resourceType === '*' && parseScope(a)!.interactions.has(interaction))
        : scopesPermit(allowed, parsed.resourceType, interaction),
    );
    if (permitted.length === 0) continue;
    const order: Interaction[] = ['c', 'r', 'u', 'd', 's'];
    granted.push(`${context}/${parsed.resourceType}.${order.filter((i) => permitted.includes(i)).join('')}`);
  }
  return [...new Set(granted)];
}
