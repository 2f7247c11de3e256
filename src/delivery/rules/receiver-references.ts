/**
 * The references rule for everything the gateway writes to another server or serves itself
 * (https://hl7.org/fhir/R4/references.html): every reference in the resource resolves at its
 * receiver, as one of
 *  - a literal reference to a resource the receiver holds (the EHR's own id, known from the pulled
 *    order or a search by identifier there);
 *  - a local reference (`#id`) to a resource contained in the *same* resource
 *    (https://hl7.org/fhir/R4/references.html#contained) — never into another resource's contained;
 *  - a logical reference by identifier (https://hl7.org/fhir/R4/references.html#logical).
 * A reference that can be none of these is dropped rather than sent dangling, and reported so the
 * caller can tell whether a required element went missing.
 *
 * Pure: the receiver's knowledge arrives as arguments.
 */
import type { Reference, Resource } from 'fhir/r4.js';

export interface ReceiverReferences {
  /** A reference as the gateway holds it (`Patient/<gateway id>`, the order's `#patient`) → the receiver's reference to the same resource. */
  mapped: ReadonlyMap<string, Reference>;
  /** Literal references that already name a resource held by the receiver (the EHR's ids read from the EHR). */
  atReceiver?: (reference: string) => boolean;
  /** A logical reference the receiver can resolve for a gateway literal not in `mapped` (e.g. a resource it received by identifier). */
  logicalFor?: (reference: string) => Reference | undefined;
}

export interface ReferencesForReceiver<T> {
  resource: T;
  /** The paths (e.g. `Task.requester`) of literal references nothing at the receiver could answer: removed, or kept only as their display. */
  dropped: string[];
}

/** `resource` with every reference rewritten so that it resolves at the receiver (see the module comment). */
export function referencesForReceiver<T extends Resource>(resource: T, receiver: ReceiverReferences): ReferencesForReceiver<T> {
  const containedIds = new Set(
    ((resource as { contained?: Resource[] }).contained ?? []).map((c) => c.id).filter((id): id is string => typeof id === 'string'),
  );
  const dropped: string[] = [];
  const mapped = mapValue(resource, resource.resourceType, { receiver, containedIds, dropped }) as T;
  return { resource: mapped, dropped };
}

interface Walk {
  receiver: ReceiverReferences;
  containedIds: ReadonlySet<string>;
  dropped: string[];
}

const DROP = Symbol('drop');

function mapValue(value: unknown, path: string, walk: Walk): unknown {
  if (Array.isArray(value)) {
    const items = value.map((item, index) => mapValue(item, `${path}[${index}]`, walk));
    return items.filter((item) => item !== DROP);
  }
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  if (typeof record['reference'] === 'string') {
    return mapReference(record as Reference, path, walk) ?? DROP;
  }
  const copy: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(record)) {
    const mapped = mapValue(inner, `${path}.${key}`, walk);
    // An extension or Task parameter whose value[x] is gone means nothing: it goes too (ext-1).
    if (mapped === DROP && /^value[A-Z]/.test(key)) return DROP;
    if (mapped !== DROP) copy[key] = mapped;
  }
  return copy;
}

function mapReference(reference: Reference, path: string, walk: Walk): Reference | undefined {
  const literal = reference.reference as string;
  if (literal.startsWith('#')) {
    if (walk.containedIds.has(literal.slice(1)) || literal === '#') return { ...reference };
  }
  const target = walk.receiver.mapped.get(literal);
  if (target !== undefined) {
    return { ...target, ...(target.display === undefined && reference.display !== undefined ? { display: reference.display } : {}) };
  }
  if (!literal.startsWith('#') && walk.receiver.atReceiver?.(literal)) return { ...reference };
  const logical = walk.receiver.logicalFor?.(literal);
  if (logical)
    return { ...logical, ...(logical.display === undefined && reference.display !== undefined ? { display: reference.display } : {}) };
  walk.dropped.push(path);
  const { reference: _unresolvable, ...rest } = reference;
  // A logical reference, or at least the display a reader can act on (ele-1: never an empty Reference).
  if (rest.identifier || rest.display !== undefined) return rest;
  return undefined;
}

/** A logical reference (https://hl7.org/fhir/R4/references.html#logical) to `resource` by its first identifier, when it has one. */
export function logicalReferenceTo(resource: Resource): Reference | undefined {
  const identifier = ((resource as { identifier?: Array<{ system?: string; value?: string }> }).identifier ?? []).find(
    (i) => i.system && i.value,
  );
  return identifier ? { type: resource.resourceType, identifier: { system: identifier.system!, value: identifier.value! } } : undefined;
}

/**
 * Local references into `container`'s contained resources (`#patient`, `#role`), as another resource
 * must name them: a contained resource cannot be referenced from outside its container, so each
 * becomes a logical reference by the contained resource's identifier.
 */
export function containedAsLogical(container: Resource): Map<string, Reference> {
  const mapped = new Map<string, Reference>();
  for (const contained of (container as { contained?: Resource[] }).contained ?? []) {
    const logical = contained.id !== undefined ? logicalReferenceTo(contained) : undefined;
    if (logical) mapped.set(`#${contained.id}`, logical);
  }
  return mapped;
}

/** The gateway as the receiver of what it serves: its own literal references resolve on its own server. */
export function gatewayReceiver(mapped: ReadonlyMap<string, Reference>): ReceiverReferences {
  return { mapped, atReceiver: () => true };
}
