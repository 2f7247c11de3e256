/**
 * FHIR's logical id (https://hl7.org/fhir/R4/datatypes.html#id): 1 to 64 letters, digits, '-' and
 * '.'. One definition for every place that checks an id or an id inside a reference.
 */

/** The id rule as a pattern source, for building larger patterns such as `Type/id`. */
export const FHIR_ID_SOURCE = '[A-Za-z0-9\\-.]{1,64}';

export const FHIR_ID = new RegExp(`^${FHIR_ID_SOURCE}$`);

export function isFhirId(value: unknown): value is string {
  return typeof value === 'string' && FHIR_ID.test(value);
}
