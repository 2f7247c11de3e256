/**
 * The vocabulary of the site check (field note 000: a referral auto-filled to the wrong site). The
 * reasons are published as a CodeSystem (profiles/CodeSystem-misroute-reason.json) so that an EHR,
 * a CDS client or a coordinator's tool can read them without knowing this code.
 */
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';

export const MISROUTE_REASON_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/misroute-reason`;

export const MISROUTE_REASON_CODES = [
  'drug-not-offered',
  'out-of-network',
  'too-far',
  'practice-address',
  'not-patient-choice',
  'site-inactive',
  'no-site-requested',
] as const;

export type MisrouteReasonCode = (typeof MISROUTE_REASON_CODES)[number];

export interface MisrouteReason {
  code: MisrouteReasonCode;
  /** A sentence for a coordinator; never carries patient data. */
  display: string;
  /** FHIRPath into the ServiceRequest (or the resource it names) where the problem shows. */
  expression: string;
}

export interface SiteSuggestion {
  /** The directory Location's id. */
  locationId: string;
  name: string;
  /** The network's site code, for a logical reference a receiver without the directory can use. */
  siteCode?: string;
  /** Great-circle distance from the patient's home, when the patient's position is known. */
  distanceKm?: number;
  /** In the network of the patient's plan; undefined when the plan is not known. */
  inNetwork?: boolean;
  /** The site the patient chose (a preference the referral or Patient carries). */
  patientChoice: boolean;
  /** A site the patient was treated at before. */
  previouslyTreated: boolean;
}

/**
 * - `ok`: the requested site makes sense; the referral moves on.
 * - `misroute-suspected`: some signal says the site is wrong and a better one exists; a coordinator
 *   confirms the site with the patient before anything is booked.
 * - `no-suitable-site`: no site of the network can take this referral (none gives the drug, say).
 */
export type SiteDecision = 'ok' | 'misroute-suspected' | 'no-suitable-site';

export interface SiteCheckResult {
  decision: SiteDecision;
  /** The directory Location the referral asked for, if it names one. */
  requestedLocationId?: string;
  reasons: MisrouteReason[];
  /** Best first: the patient's own choice, then sites treated at before, then in-network and near. */
  suggestions: SiteSuggestion[];
}
