/**
 * The patient's home for the map: the geolocation extension, else the ZIP code's centre from the
 * table the build bundles (scripts/build-console.mjs), one chunk per first digit, loaded only when
 * needed. The lookup happens in the browser: no address or ZIP code is sent anywhere.
 */
import type { Patient } from 'fhir/r4.js';
import { geolocationOf, homeAddress, usZipOf, zipCentre, type GeoPoint, type ZipChunk } from '../model/geo.js';

const chunks = import.meta.glob<ZipChunk>('../../../generated/zip-centroids/*.json', { import: 'default' });

export async function homePosition(
  patient: Patient | undefined,
): Promise<{ position: GeoPoint; source: 'geolocation' | 'zip-centre' } | undefined> {
  const address = homeAddress(patient);
  const exact = geolocationOf(address);
  if (exact) return { position: exact, source: 'geolocation' };
  const zip = usZipOf(address);
  if (zip === undefined) return undefined;
  const load = chunks[`../../../generated/zip-centroids/${zip[0]}.json`];
  if (!load) return undefined;
  const position = zipCentre(zip, await load());
  return position ? { position, source: 'zip-centre' } : undefined;
}
