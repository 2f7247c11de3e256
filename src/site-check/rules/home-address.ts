/**
 * Which of a patient's addresses is home, and its geolocation extension
 * (https://hl7.org/fhir/R4/extension-geolocation.html). Pure and free of Node, so the coordinator
 * console's map reads a home exactly as the site check does (src/site-check/rules/patient-position.ts).
 */
import type { Address, Extension, Patient } from 'fhir/r4.js';

export const GEOLOCATION_EXTENSION_URL = 'http://hl7.org/fhir/StructureDefinition/geolocation';

export function geolocationOf(address: Address | undefined): { latitude: number; longitude: number } | undefined {
  const geolocation = address?.extension?.find((e) => e.url === GEOLOCATION_EXTENSION_URL);
  const part = (url: string): number | undefined => geolocation?.extension?.find((e: Extension) => e.url === url)?.valueDecimal;
  const latitude = part('latitude');
  const longitude = part('longitude');
  return latitude !== undefined && longitude !== undefined ? { latitude, longitude } : undefined;
}

/** The address the patient lives at: a current home address first, then any current one. */
export function homeAddress(patient: Patient | undefined): Address | undefined {
  const current = (patient?.address ?? []).filter((a) => a.use !== 'old' && a.period?.end === undefined && a.type !== 'postal');
  return current.find((a) => a.use === 'home') ?? current[0];
}

/** A US address, or one that names no country (the network's default). */
export function isUsAddress(address: Address): boolean {
  return address.country === undefined || /^(US|USA)$/i.test(address.country);
}

/** The five-digit ZIP code of a US postal code (ZIP or ZIP+4). */
export function fiveDigitZip(postalCode: string | undefined): string | undefined {
  return /^(\d{5})(?:-?\d{4})?$/.exec(postalCode?.trim() ?? '')?.[1];
}
