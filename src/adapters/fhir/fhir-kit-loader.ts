/**
 * fhir-kit-client, loaded when the first request goes out: a gateway with no EHR or payer
 * connection (`npm start` on its demo) never loads it, and start-up stays short
 * (docs/architecture.md, "Decisions": start-up).
 */
import type { Client } from 'fhir-kit-client';

type FhirKitModule = typeof import('fhir-kit-client');

let fhirKit: Promise<FhirKitModule> | undefined;

export function loadFhirKit(): Promise<FhirKitModule> {
  return (fhirKit ??= import('fhir-kit-client'));
}

/** A client made on first use, then the same one for every call. */
export function lazyFhirKitClient(config: ConstructorParameters<typeof Client>[0]): () => Promise<Client> {
  let client: Promise<Client> | undefined;
  return () => (client ??= loadFhirKit().then((module) => new module.Client(config)));
}
