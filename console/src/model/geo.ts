/**
 * Where the patient lives, for the map: the same rule as the gateway's site check
 * (src/site-check/rules/home-address.ts and patient-position.ts), applied in the browser so that the
 * patient's address never has to leave it. Distances use the site check's own formula
 * (geokdbush's great-circle distance). Pure.
 */
import type { Address } from 'fhir/r4.js';
import { distance } from 'geokdbush';
import { fiveDigitZip, isUsAddress } from '../../../src/site-check/rules/home-address.js';

export { geolocationOf, homeAddress } from '../../../src/site-check/rules/home-address.js';

export interface GeoPoint {
  latitude: number;
  longitude: number;
}

/** Great-circle distance, km. */
export function distanceKm(a: GeoPoint, b: GeoPoint): number {
  return distance(a.longitude, a.latitude, b.longitude, b.latitude);
}

/** The five-digit US ZIP code of an address, when it has one. */
export function usZipOf(address: Address | undefined): string | undefined {
  return address && isUsAddress(address) ? fiveDigitZip(address.postalCode) : undefined;
}

/** A ZIP table chunk as the build writes it: the ZIP's last four digits -> [latitude, longitude]. */
export type ZipChunk = Record<string, [number, number]>;

export function zipCentre(zip: string, chunk: ZipChunk): GeoPoint | undefined {
  const found = chunk[zip.slice(1)];
  return found ? { latitude: found[0], longitude: found[1] } : undefined;
}
