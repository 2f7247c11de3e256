/**
 * The OperationDefinitions the gateway implements, read from the published conformance resources
 * (profiles/): each operation's file reads its Parameters by its own definition
 * (src/fhir/operation-parameters.ts), so what the gateway publishes is what it enforces.
 */
import type { OperationDefinition, Resource } from 'fhir/r4.js';
import type { GatewayDeps } from '../../ports/gateway-deps.js';

/** Published conformance resources (profiles/): StructureDefinition, CodeSystem, ValueSet, OperationDefinition. */
export type ConformanceResources = ReadonlyMap<string, Resource>;

/** A published OperationDefinition by id; the gateway does not start without the ones it implements. */
export function operationDefinition(conformance: ConformanceResources, id: string): OperationDefinition {
  const definition = conformance.get(`OperationDefinition/${id}`);
  if (definition?.resourceType !== 'OperationDefinition')
    throw new Error(`profiles/ lacks OperationDefinition/${id}, which the gateway implements`);
  return definition as OperationDefinition;
}

/** What every operation's factory takes: the gateway's ports and the published definitions. */
export interface OperationContext {
  deps: GatewayDeps;
  conformance: ConformanceResources;
}
