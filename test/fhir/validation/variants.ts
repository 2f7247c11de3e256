/**
 * Broken variants of the official examples: one deliberate defect each, at a place the schema
 * walk (examples.ts) says has the right type for it. Every variant is invalid R4 by construction,
 * and `expression` says where a validator should point.
 */
import { type Example, type Location, edit, fhirPathOfSteps, locations, valueAtSteps } from './examples.js';

export interface Variant {
  file: string;
  kind: string;
  resource: Record<string, unknown>;
  /** Where the defect is, as FHIRPath. */
  expression: string;
}

const STRINGISH = new Set([
  'base64Binary',
  'canonical',
  'code',
  'date',
  'dateTime',
  'id',
  'instant',
  'markdown',
  'oid',
  'string',
  'time',
  'uri',
  'url',
  'uuid',
  'xhtml',
]);
const NUMERIC = new Set(['decimal', 'integer', 'positiveInt', 'unsignedInt']);
const INTEGERS = new Set(['integer', 'positiveInt', 'unsignedInt']);
const DATES = new Set(['date', 'dateTime', 'instant']);

interface Mutation {
  kind: string;
  applies: (l: Location, resource: Record<string, unknown>) => boolean;
  mutate: (l: Location, resource: Record<string, unknown>) => { resource: Record<string, unknown>; expression: string };
}

const at = (root: string, l: Location): string => fhirPathOfSteps(root, l.steps);
const replace = (value: unknown) => (l: Location, r: Record<string, unknown>, root: string) => ({
  resource: edit(r, l.steps, () => value),
  expression: at(root, l),
});

function mutations(root: string): Mutation[] {
  return [
    { kind: 'object as a string', applies: (l) => l.kind === 'object', mutate: (l, r) => replace('oops')(l, r, root) },
    {
      kind: 'primitive of the wrong JSON type',
      applies: (l) => l.kind === 'primitive',
      mutate: (l, r) => replace(STRINGISH.has(l.type) ? 42 : NUMERIC.has(l.type) ? '42' : 'true')(l, r, root),
    },
    {
      kind: 'unknown element',
      applies: (l) => l.kind === 'object' || l.kind === 'resource',
      mutate: (l, r) => ({
        resource: edit(r, l.steps, (o) => ({ ...(o as object), colour: 'red' })),
        expression: `${at(root, l)}.colour`,
      }),
    },
    {
      kind: 'impossible date',
      applies: (l) => l.kind === 'primitive' && DATES.has(l.type),
      mutate: (l, r) => replace('2026-13-45')(l, r, root),
    },
    {
      kind: 'code outside its required binding',
      applies: (l) => l.kind === 'primitive' && l.bound,
      mutate: (l, r) => replace('NOT-A-CODE')(l, r, root),
    },
    {
      kind: 'id with spaces',
      applies: (l) => l.kind === 'resource',
      mutate: (l, r) => ({
        resource: edit(r, l.steps, (o) => ({ ...(o as object), id: 'has spaces' })),
        expression: `${at(root, l)}.id`,
      }),
    },
    { kind: 'empty string', applies: (l) => l.kind === 'primitive' && STRINGISH.has(l.type), mutate: (l, r) => replace('')(l, r, root) },
    {
      kind: 'whitespace-only string',
      applies: (l) => l.kind === 'primitive' && (l.type === 'string' || l.type === 'markdown'),
      mutate: (l, r) => replace('   ')(l, r, root),
    },
    {
      kind: 'array where one value belongs',
      applies: (l) => l.kind === 'object',
      mutate: (l, r) => ({ resource: edit(r, l.steps, (o) => [o]), expression: at(root, l) }),
    },
    {
      kind: 'one value where an array belongs',
      applies: (l) => l.kind === 'array',
      mutate: (l, r) => ({ resource: edit(r, l.steps, (a) => (a as unknown[])[0]), expression: at(root, l) }),
    },
    {
      kind: 'null value',
      applies: (l, r) => l.kind === 'primitive' && !hasPartner(r, l),
      mutate: (l, r) => replace(null)(l, r, root),
    },
    { kind: 'empty object', applies: (l) => l.kind === 'object', mutate: (l, r) => replace({})(l, r, root) },
    { kind: 'empty array', applies: (l) => l.kind === 'array', mutate: (l, r) => replace([])(l, r, root) },
    {
      kind: 'integer with a fraction',
      applies: (l) => l.kind === 'primitive' && INTEGERS.has(l.type),
      mutate: (l, r) => replace(1.5)(l, r, root),
    },
    {
      kind: 'positiveInt of 0',
      applies: (l) => l.kind === 'primitive' && l.type === 'positiveInt',
      mutate: (l, r) => replace(0)(l, r, root),
    },
    {
      kind: 'required element removed',
      applies: (l, r) => (l.kind === 'object' || l.kind === 'resource') && presentRequired(l, r) !== undefined,
      mutate: (l, r) => {
        const key = presentRequired(l, r) as string;
        const keys = jsonKeys(valueAtSteps(r, l.steps) as Record<string, unknown>, key);
        return {
          resource: edit(r, l.steps, (o) => Object.fromEntries(Object.entries(o as object).filter(([k]) => !keys.includes(k)))),
          expression: `${at(root, l)}.${key.replace('[x]', '')}`,
        };
      },
    },
    {
      kind: 'extension without value or extensions',
      applies: (l) => l.kind === 'object' && l.type === 'Extension',
      mutate: (l, r) => ({
        resource: edit(r, l.steps, (o) => ({ url: (o as { url?: unknown }).url ?? 'http://example.org/x' })),
        expression: at(root, l),
      }),
    },
    {
      kind: 'unknown resource type',
      applies: (l) => l.kind === 'resource' && l.steps.length > 0,
      mutate: (l, r) => ({
        resource: edit(r, l.steps, (o) => ({ ...(o as object), resourceType: 'Nope' })),
        expression: `${at(root, l)}.resourceType`,
      }),
    },
  ];
}

/** A primitive in an array whose `_partner` array has an entry at the same index may be null. */
function hasPartner(resource: Record<string, unknown>, l: Location): boolean {
  const index = l.steps.at(-1);
  const name = l.steps.at(-2);
  if (typeof index !== 'number' || typeof name !== 'string') return false;
  const parent = valueAtSteps(resource, l.steps.slice(0, -2)) as Record<string, unknown>;
  const partner = parent[name.startsWith('_') ? name.slice(1) : `_${name}`];
  return Array.isArray(partner) && partner[index] != null;
}

function presentRequired(l: Location, resource: Record<string, unknown>): string | undefined {
  const value = valueAtSteps(resource, l.steps) as Record<string, unknown>;
  return l.requiredKeys.find((k) => jsonKeys(value, k).length > 0);
}

function jsonKeys(object: Record<string, unknown>, element: string): string[] {
  const base = element.replace('[x]', '');
  return Object.keys(object).filter((k) => {
    const name = k.startsWith('_') ? k.slice(1) : k;
    return element.endsWith('[x]') ? name.startsWith(base) && /[A-Z]/.test(name.charAt(base.length)) : name === base;
  });
}

/** Up to `perKind` variants of each kind, at places spread over the resource. */
export function variantsOf(example: Example, perKind: number): Variant[] {
  const root = String(example.resource.resourceType);
  const all = locations(example.resource);
  const variants: Variant[] = [];
  for (const mutation of mutations(root)) {
    const candidates = all.filter((l) => mutation.applies(l, example.resource));
    const picks = new Set<number>();
    for (let i = 0; i < Math.min(perKind, candidates.length); i++)
      picks.add(Math.floor(((i + 0.5) * candidates.length) / Math.min(perKind, candidates.length)));
    for (const index of picks) {
      const { resource, expression } = mutation.mutate(candidates[index] as Location, example.resource);
      variants.push({ file: example.file, kind: mutation.kind, resource, expression });
    }
  }
  return variants;
}
