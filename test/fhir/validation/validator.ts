/** One FhirValidator for the validation tests, loaded from the project's profiles/ and generated/. */
import { fileURLToPath } from 'node:url';
import { FhirValidator } from '../../../src/fhir/validation/index.js';

export const PROFILES_DIR = fileURLToPath(new URL('../../../profiles', import.meta.url));
export const REFERRAL_PROFILE = 'https://fhir.infusion-gateway.example/StructureDefinition/infusion-referral';

let loading: Promise<FhirValidator> | undefined;

export function loadValidator(): Promise<FhirValidator> {
  loading ??= FhirValidator.load({ profilesDir: PROFILES_DIR });
  return loading;
}

/** `code expression` lines: what a test compares, and what a failure message shows. */
export function summarize(issues: ReadonlyArray<{ code: string; expression?: string[] }>): string[] {
  return issues.map((i) => `${i.code} ${i.expression?.join(', ') ?? ''}`);
}
