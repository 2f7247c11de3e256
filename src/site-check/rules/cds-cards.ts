/**
 * CDS Hooks cards for the site check: what the ordering clinician sees when the site an order
 * names looks like an EHR auto-fill (field note 000), while the order can still be changed.
 *
 * Shapes follow CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#cds-service-response) and the
 * card conventions of Da Vinci CRD (https://hl7.org/fhir/us/davinci-crd/cards.html): a coded
 * `source.topic`, one card per order with the order named in `detail` and linked by the
 * `davinci-crd.associated-resource` extension. Pure: the card's uuids come from the caller.
 */
import type { ServiceRequest } from 'fhir/r4.js';
import misrouteReasonCodeSystem from '../../../profiles/CodeSystem-misroute-reason.json' with { type: 'json' };
import { GATEWAY_CANONICAL_BASE } from '../../referral/rules/referral-status.js';
import type { MisrouteReason, SiteCheckResult, SiteSuggestion } from './site-check-types.js';

export type CdsIndicator = 'info' | 'warning' | 'critical';

/** A CDS Hooks Coding: `code` and `system` required, `display` optional (https://cds-hooks.hl7.org/2.0/#coding). */
export interface CdsCoding {
  system: string;
  code: string;
  display?: string;
}

export interface CdsSource {
  label: string;
  url?: string;
  icon?: string;
  topic?: CdsCoding;
}

/** https://cds-hooks.hl7.org/2.0/#action */
export interface CdsAction {
  type: 'create' | 'update' | 'delete';
  description: string;
  resource?: ServiceRequest;
  resourceId?: string[];
}

/** https://cds-hooks.hl7.org/2.0/#suggestion */
export interface CdsSuggestion {
  label: string;
  uuid?: string;
  isRecommended?: boolean;
  actions?: CdsAction[];
}

/** https://cds-hooks.hl7.org/2.0/#card-attributes */
export interface CdsCard {
  uuid?: string;
  /** Shown where space is short: under 140 characters, and never patient data. */
  summary: string;
  /** GitHub-flavoured markdown. */
  detail?: string;
  indicator: CdsIndicator;
  source: CdsSource;
  suggestions?: CdsSuggestion[];
  selectionBehavior?: 'at-most-one' | 'any';
  overrideReasons?: CdsCoding[];
  extension?: Record<string, unknown>;
}

/** https://cds-hooks.hl7.org/2.0/#http-response-1 */
export interface CdsServiceResponse {
  cards: CdsCard[];
}

export const CDS_SUMMARY_MAX_LENGTH = 140;

/**
 * CRD response types moved from the CRD temporary code system (STU 2.1,
 * http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp) to THO in CRD STU 2.2
 * (https://hl7.org/fhir/us/davinci-crd/ValueSet-cardType.html); `network` is "information about
 * in-network providers that could deliver the order (or in-network alternatives for an order
 * directed out-of-network)", which is what a wrong-site card gives.
 */
export const CDS_CARD_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/cdshooks-card-type';
export const NETWORK_CARD_TOPIC: CdsCoding = { system: CDS_CARD_TYPE_SYSTEM, code: 'network', display: 'Network' };

/** CRD card extension linking a card to the context resource it is about (CRD "Linking cards to requests"). */
export const ASSOCIATED_RESOURCE_EXTENSION = 'davinci-crd.associated-resource';

/** Why a clinician keeps the site despite the card; published as profiles/CodeSystem-site-check-override-reason.json. */
export const SITE_CHECK_OVERRIDE_REASON_SYSTEM = `${GATEWAY_CANONICAL_BASE}/CodeSystem/site-check-override-reason`;

export const SITE_CHECK_OVERRIDE_REASONS: readonly CdsCoding[] = [
  { system: SITE_CHECK_OVERRIDE_REASON_SYSTEM, code: 'patient-confirmed-site', display: 'Patient confirmed this site' },
  { system: SITE_CHECK_OVERRIDE_REASON_SYSTEM, code: 'site-agreed-with-center', display: 'Site agreed with the infusion center' },
  { system: SITE_CHECK_OVERRIDE_REASON_SYSTEM, code: 'clinical-reason', display: 'Clinical reason for this site' },
];

/** The published display of each reason code: one wording in the CodeSystem, the Task and the card. */
const REASON_TITLES: ReadonlyMap<string, string> = new Map(
  (misrouteReasonCodeSystem.concept as Array<{ code: string; display: string }>).map((c) => [c.code, c.display]),
);

export interface SiteCheckCardInput {
  /** The draft order as the hook sent it; the suggestions update a copy of it. */
  serviceRequest: ServiceRequest;
  /** The catalog drug, to tell orders apart on the card (CRD asks cards on several orders to say which). */
  drug: { name: string; brandNames?: readonly string[] };
  result: SiteCheckResult;
  /** The directory name of the requested site, when the order names one. */
  requestedSiteName?: string;
  source: Omit<CdsSource, 'topic'>;
  newUuid: () => string;
}

/**
 * The card for one checked order, or none when the site makes sense (`ok`).
 *
 * Indicator `warning` for both `misroute-suspected` and `no-suitable-site`: CDS Hooks keeps
 * `critical` for information that could prevent harm (https://cds-hooks.hl7.org/2.0/#card-attributes),
 * and a wrong site costs time, not safety: the gateway checks the referral again on arrival and
 * nothing is booked at a suspected site until a coordinator has confirmed it with the patient.
 */
export function siteCheckCard(input: SiteCheckCardInput): CdsCard | undefined {
  const { result } = input;
  if (result.decision === 'ok') return undefined;
  const drugLabel = drugLabelOf(input.drug);
  const requested = input.requestedSiteName ?? input.serviceRequest.locationReference?.[0]?.display;
  const card: CdsCard = {
    uuid: input.newUuid(),
    summary: summaryOf(result, drugLabel),
    detail: detailOf(result, drugLabel, requested),
    indicator: 'warning',
    source: { ...input.source, topic: NETWORK_CARD_TOPIC },
    overrideReasons: SITE_CHECK_OVERRIDE_REASONS.map((reason) => ({ ...reason })),
  };
  if (result.suggestions.length > 0) {
    card.suggestions = result.suggestions.map((suggestion, index) =>
      suggestionFor(input.serviceRequest, suggestion, { recommended: index === 0, uuid: input.newUuid() }),
    );
    // One site per order: accepting two suggestions would set the location twice.
    card.selectionBehavior = 'at-most-one';
  }
  if (input.serviceRequest.id !== undefined)
    card.extension = { [ASSOCIATED_RESOURCE_EXTENSION]: [`ServiceRequest/${input.serviceRequest.id}`] };
  return card;
}

/**
 * The order with its site replaced by the suggested one. `locationCode` goes too: it would name
 * the old site beside the new reference.
 */
export function withSuggestedSite(serviceRequest: ServiceRequest, site: Pick<SiteSuggestion, 'locationId' | 'name'>): ServiceRequest {
  const { locationCode: _locationCode, ...rest } = structuredClone(serviceRequest);
  return { ...rest, locationReference: [{ reference: `Location/${site.locationId}`, display: site.name }] };
}

function suggestionFor(
  serviceRequest: ServiceRequest,
  suggestion: SiteSuggestion,
  options: { recommended: boolean; uuid: string },
): CdsSuggestion {
  const facts = suggestionFacts(suggestion);
  return {
    label: `Send to ${suggestion.name}${facts.length > 0 ? ` (${facts.join(', ')})` : ''}`,
    uuid: options.uuid,
    isRecommended: options.recommended,
    actions: [
      {
        type: 'update',
        description: `Set the order's infusion site to ${suggestion.name}`,
        resource: withSuggestedSite(serviceRequest, suggestion),
      },
    ],
  };
}

function suggestionFacts(suggestion: SiteSuggestion): string[] {
  const facts: string[] = [];
  if (suggestion.patientChoice) facts.push("patient's choice");
  if (suggestion.previouslyTreated) facts.push('treated there before');
  if (suggestion.inNetwork === true) facts.push('in network');
  if (suggestion.inNetwork === false) facts.push('out of network');
  if (suggestion.distanceKm !== undefined && Number.isFinite(suggestion.distanceKm))
    facts.push(`${formatKm(suggestion.distanceKm)} km from home`);
  return facts;
}

function formatKm(km: number): string {
  return km >= 10 ? String(Math.round(km)) : km.toFixed(1);
}

function drugLabelOf(drug: SiteCheckCardInput['drug']): string {
  const name = drug.name.charAt(0).toUpperCase() + drug.name.slice(1);
  const brand = drug.brandNames?.[0];
  return brand === undefined ? name : `${name} (${brand})`;
}

/** Says which order and what is wrong, in under 140 characters; never the patient's name, home or plan. */
function summaryOf(result: SiteCheckResult, drugLabel: string): string {
  if (result.decision === 'no-suitable-site')
    return fit([
      `${drugLabel}: no infusion site of the network can take this order`,
      'No infusion site of the network can take this order',
    ]);
  const best = result.suggestions[0];
  return fit([
    ...(best ? [`${drugLabel}: the infusion site looks wrong; ${best.name} suggested`] : []),
    `${drugLabel}: the infusion site looks wrong`,
    'The infusion site of this order looks wrong',
  ]);
}

/** The first candidate that fits the CDS Hooks summary limit, else the last one cut short. */
function fit(candidates: readonly string[]): string {
  const fitting = candidates.find((c) => c.length < CDS_SUMMARY_MAX_LENGTH);
  if (fitting !== undefined) return fitting;
  const last = candidates[candidates.length - 1] ?? '';
  return `${last.slice(0, CDS_SUMMARY_MAX_LENGTH - 2)}…`;
}

function detailOf(result: SiteCheckResult, drugLabel: string, requested: string | undefined): string {
  const lines: string[] = [];
  lines.push(
    requested === undefined
      ? `The order for **${escapeMarkdown(drugLabel)}** names no infusion site of the network that fits. The infusion network's site check found:`
      : `The order for **${escapeMarkdown(drugLabel)}** names **${escapeMarkdown(requested)}**. The infusion network's site check found:`,
  );
  lines.push('');
  for (const reason of result.reasons) lines.push(`- ${reasonLine(reason)}`);
  lines.push('');
  if (result.decision === 'no-suitable-site') {
    lines.push(
      'No active site of the network within reach gives this drug. Sent as it is, the referral will be rejected on arrival; consider another infusion provider.',
    );
    return lines.join('\n');
  }
  lines.push('Suggested sites, best first:');
  lines.push('');
  result.suggestions.forEach((suggestion, index) => {
    const facts = suggestionFacts(suggestion);
    lines.push(`${index + 1}. **${escapeMarkdown(suggestion.name)}**${facts.length > 0 ? `: ${escapeMarkdown(facts.join(', '))}` : ''}`);
  });
  lines.push('');
  lines.push(
    'Choose a suggestion to change the site of the order, or keep it and give a reason. The infusion center confirms the site with the patient before anything is booked.',
  );
  return lines.join('\n');
}

function reasonLine(reason: MisrouteReason): string {
  const title = REASON_TITLES.get(reason.code) ?? reason.code;
  return `**${escapeMarkdown(title)}**: ${escapeMarkdown(reason.display)}`;
}

/** Names come from directories and EHRs: a `*` or `[` in one must not turn into markup or a link. */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]<>~]/g, (c) => `\\${c}`);
}
