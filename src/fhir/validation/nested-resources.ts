/**
 * Where a resource holds other resources. The generated validators check only that these are
 * objects with a string `resourceType` (the schema's oneOf over all 146 resources is replaced,
 * see scripts/generate-validators.mjs, which also verifies this list is complete); each nested
 * resource is then validated by its own type's validator, so its issues read
 * `Bundle.entry[2].resource.subject`.
 *
 * - DomainResource.contained (https://hl7.org/fhir/R4/references.html#contained)
 * - Bundle.entry.resource and Bundle.entry.response.outcome (https://hl7.org/fhir/R4/bundle.html)
 * - Parameters.parameter.resource, parts included (https://hl7.org/fhir/R4/parameters.html)
 */
import { isJsonObject } from './element-paths.js';

export interface NestedResource {
  resource: Record<string, unknown>;
  /** FHIRPath suffix relative to the holder: `.contained[0]`, `.entry[2].resource`. */
  path: string;
}

export function nestedResources(resource: Record<string, unknown>): NestedResource[] {
  const nested: NestedResource[] = [];
  const add = (value: unknown, path: string): void => {
    if (isJsonObject(value)) nested.push({ resource: value, path });
  };
  eachObject(resource.contained, (item, i) => add(item, `.contained[${i}]`));
  if (resource.resourceType === 'Bundle') {
    eachObject(resource.entry, (entry, i) => {
      add(entry.resource, `.entry[${i}].resource`);
      if (isJsonObject(entry.response)) add(entry.response.outcome, `.entry[${i}].response.outcome`);
    });
  }
  if (resource.resourceType === 'Parameters') {
    const walk = (parameters: unknown, path: string): void =>
      eachObject(parameters, (parameter, i) => {
        add(parameter.resource, `${path}[${i}].resource`);
        walk(parameter.part, `${path}[${i}].part`);
      });
    walk(resource.parameter, '.parameter');
  }
  return nested;
}

function eachObject(items: unknown, visit: (item: Record<string, unknown>, index: number) => void): void {
  if (!Array.isArray(items)) return;
  items.forEach((item, index) => {
    if (isJsonObject(item)) visit(item, index);
  });
}
