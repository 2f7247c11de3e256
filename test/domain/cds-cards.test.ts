import { expect } from 'chai';
import type { ServiceRequest } from 'fhir/r4.js';
import {
  ASSOCIATED_RESOURCE_EXTENSION,
  CDS_CARD_TYPE_SYSTEM,
  SITE_CHECK_OVERRIDE_REASON_SYSTEM,
  escapeMarkdown,
  siteCheckCard,
  withSuggestedSite,
  type SiteCheckCardInput,
} from '../../src/site-check/rules/cds-cards.js';
import { MISROUTE_REASON_CODES, type SiteCheckResult } from '../../src/site-check/rules/site-check-types.js';
import misrouteReasons from '../../profiles/CodeSystem-misroute-reason.json' with { type: 'json' };

const DRAFT: ServiceRequest = {
  resourceType: 'ServiceRequest',
  id: 'draft-ocrelizumab-01',
  status: 'draft',
  intent: 'order',
  subject: { reference: 'Patient/cds-patient-ms' },
  code: { coding: [{ system: 'http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets', code: 'J2350' }] },
  locationReference: [{ reference: 'Location/hin-nashville-donelson', display: 'Harbor Infusion Center - Donelson' }],
  note: [{ text: 'Premedication per protocol.' }],
};

const MISROUTE: SiteCheckResult = {
  decision: 'misroute-suspected',
  requestedLocationId: 'hin-nashville-donelson',
  reasons: [
    {
      code: 'drug-not-offered',
      display: 'Harbor Infusion Center - Donelson does not give the ordered drug',
      expression: 'ServiceRequest.locationReference[0]',
    },
    {
      code: 'not-patient-choice',
      display: 'The patient chose Harbor Infusion Center - Green Hills',
      expression: 'ServiceRequest.locationReference[0]',
    },
  ],
  suggestions: [
    {
      locationId: 'hin-nashville-green-hills',
      name: 'Harbor Infusion Center - Green Hills',
      distanceKm: 3.2,
      inNetwork: true,
      patientChoice: true,
      previouslyTreated: false,
    },
    {
      locationId: 'hin-nashville-midtown',
      name: 'Harbor Infusion Center - Nashville Midtown',
      distanceKm: 8.5,
      inNetwork: true,
      patientChoice: false,
      previouslyTreated: false,
    },
  ],
};

function counter(): () => string {
  let n = 0;
  return () => {
    n += 1;
    return `uuid-${n}`;
  };
}

function input(overrides: Partial<SiteCheckCardInput> = {}): SiteCheckCardInput {
  return {
    serviceRequest: DRAFT,
    drug: { name: 'ocrelizumab', brandNames: ['Ocrevus'] },
    result: MISROUTE,
    requestedSiteName: 'Harbor Infusion Center - Donelson',
    source: { label: 'Infusion network site check' },
    newUuid: counter(),
    ...overrides,
  };
}

describe('CDS Hooks site-check cards', () => {
  it('gives no card when the site check finds the site makes sense', () => {
    const card = siteCheckCard(
      input({ result: { decision: 'ok', requestedLocationId: 'hin-nashville-green-hills', reasons: [], suggestions: [] } }),
    );
    expect(card).to.equal(undefined);
  });

  it('warns about a suspected misroute with a short summary that names the drug and the best site', () => {
    const card = siteCheckCard(input());
    expect(card?.indicator).to.equal('warning');
    expect(card?.summary).to.equal('Ocrelizumab (Ocrevus): the infusion site looks wrong; Harbor Infusion Center - Green Hills suggested');
    expect(card?.summary.length).to.be.below(140);
    expect(card?.uuid).to.equal('uuid-1');
  });

  it('names every reason in the detail with the display the misroute-reason CodeSystem publishes', () => {
    const detail = siteCheckCard(input())?.detail ?? '';
    expect(detail).to.include('**Harbor Infusion Center - Donelson**');
    expect(detail).to.include('- **Drug not offered at the site**: Harbor Infusion Center - Donelson does not give the ordered drug');
    expect(detail).to.include("- **Not the patient's chosen site**: The patient chose Harbor Infusion Center - Green Hills");
    expect(detail).to.include('1. **Harbor Infusion Center - Green Hills**');
    expect(detail).to.include('2. **Harbor Infusion Center - Nashville Midtown**');
  });

  it('has a published title for every misroute reason code, so no card shows a bare code', () => {
    for (const code of MISROUTE_REASON_CODES) {
      const display = misrouteReasons.concept.find((c) => c.code === code)?.display;
      expect(display, code).to.be.a('string');
      const detail = siteCheckCard(
        input({ result: { ...MISROUTE, reasons: [{ code, display: 'why', expression: 'ServiceRequest.locationReference[0]' }] } }),
      )?.detail;
      expect(detail, code).to.include(`**${escapeMarkdown(display as string)}**: why`);
    }
  });

  it('codes the card as a Da Vinci CRD network card and links it to its order', () => {
    const card = siteCheckCard(input());
    expect(card?.source).to.deep.equal({
      label: 'Infusion network site check',
      topic: { system: CDS_CARD_TYPE_SYSTEM, code: 'network', display: 'Network' },
    });
    expect(card?.extension).to.deep.equal({ [ASSOCIATED_RESOURCE_EXTENSION]: ['ServiceRequest/draft-ocrelizumab-01'] });
  });

  it('offers one suggestion per suggested site, best first, recommending only the first', () => {
    const card = siteCheckCard(input());
    expect(card?.selectionBehavior).to.equal('at-most-one');
    expect(card?.suggestions?.map((s) => s.isRecommended)).to.deep.equal([true, false]);
    expect(card?.suggestions?.map((s) => s.uuid)).to.deep.equal(['uuid-2', 'uuid-3']);
    expect(card?.suggestions?.[0]?.label).to.equal(
      "Send to Harbor Infusion Center - Green Hills (patient's choice, in network, 3.2 km from home)",
    );
  });

  it('updates the draft order with only its location replaced by the suggested site', () => {
    const card = siteCheckCard(input());
    const action = card?.suggestions?.[1]?.actions?.[0];
    expect(action?.type).to.equal('update');
    expect(action?.resource?.locationReference).to.deep.equal([
      { reference: 'Location/hin-nashville-midtown', display: 'Harbor Infusion Center - Nashville Midtown' },
    ]);
    const { locationReference: _changed, ...rest } = (action?.resource ?? {}) as ServiceRequest;
    const { locationReference: _original, ...originalRest } = DRAFT;
    expect(rest).to.deep.equal(originalRest);
    expect(DRAFT.locationReference?.[0]?.reference, 'the hook request is left as it was').to.equal('Location/hin-nashville-donelson');
  });

  it('drops a coded location when it replaces the site, so the order names one site only', () => {
    const coded: ServiceRequest = {
      ...DRAFT,
      locationCode: [{ coding: [{ system: 'https://fhir.infusion-gateway.example/sid/site-code', code: 'NSH-DON' }] }],
    };
    const updated = withSuggestedSite(coded, { locationId: 'hin-nashville-green-hills', name: 'Harbor Infusion Center - Green Hills' });
    expect(updated.locationCode).to.equal(undefined);
    expect(updated.locationReference).to.deep.equal([
      { reference: 'Location/hin-nashville-green-hills', display: 'Harbor Infusion Center - Green Hills' },
    ]);
  });

  it('lets the clinician keep the site with a coded override reason such as the patient confirming it', () => {
    const codes = siteCheckCard(input())?.overrideReasons?.map((r) => `${r.system}|${r.code}`);
    expect(codes).to.include(`${SITE_CHECK_OVERRIDE_REASON_SYSTEM}|patient-confirmed-site`);
  });

  it('warns without suggestions when no site of the network can take the order', () => {
    const card = siteCheckCard(
      input({
        result: {
          decision: 'no-suitable-site',
          requestedLocationId: 'hin-nashville-donelson',
          reasons: [
            {
              code: 'drug-not-offered',
              display: 'Harbor Infusion Center - Donelson does not give the ordered drug',
              expression: 'ServiceRequest.locationReference[0]',
            },
          ],
          suggestions: [],
        },
      }),
    );
    expect(card?.indicator).to.equal('warning');
    expect(card?.summary).to.equal('Ocrelizumab (Ocrevus): no infusion site of the network can take this order');
    expect(card?.suggestions).to.equal(undefined);
    expect(card?.selectionBehavior).to.equal(undefined);
    expect(card?.detail).to.include('will be rejected on arrival');
  });

  it('keeps the summary under 140 characters however long the site name is', () => {
    const longName = `Harbor Infusion Center - ${'Very Long Neighbourhood Name '.repeat(6)}`;
    const result: SiteCheckResult = { ...MISROUTE, suggestions: [{ ...MISROUTE.suggestions[0]!, name: longName }] };
    const summary =
      siteCheckCard(input({ result, drug: { name: 'immune globulin intravenous (human)', brandNames: ['Privigen'] } }))?.summary ?? '';
    expect(summary.length).to.be.below(140);
    expect(summary).to.equal('Immune globulin intravenous (human) (Privigen): the infusion site looks wrong');
  });

  it('escapes markdown in site names so a directory entry cannot inject links or emphasis', () => {
    const result: SiteCheckResult = {
      ...MISROUTE,
      suggestions: [{ ...MISROUTE.suggestions[0]!, name: 'Site *A* [click](https://evil.example)' }],
    };
    const detail = siteCheckCard(input({ result }))?.detail ?? '';
    expect(detail).to.include('**Site \\*A\\* \\[click\\](https://evil.example)**');
    expect(detail).not.to.include('[click](');
  });

  it('falls back to the display the order carries when the requested site is not in the directory', () => {
    const { requestedSiteName: _name, ...withoutName } = input();
    const detail = siteCheckCard(withoutName)?.detail ?? '';
    expect(detail).to.include('names **Harbor Infusion Center - Donelson**');
  });
});
