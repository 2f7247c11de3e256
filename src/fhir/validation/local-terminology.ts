/**
 * The value sets a profile in profiles/ can bind to: the ValueSets and CodeSystems published
 * beside it. Expanded once at load, without a terminology server, from `compose`
 * (https://hl7.org/fhir/R4/valueset.html#compose): whole local CodeSystems (nested concepts
 * included), enumerated concepts of any system, and other local ValueSets. Anything else
 * (filters, external whole systems) cannot be checked here, so loading fails and says so.
 */
import type { CodeSystem, CodeSystemConcept, ValueSet } from 'fhir/r4.js';

export class TerminologyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TerminologyError';
  }
}

/** An expanded value set: which (system, code) pairs it contains. */
export class CodeSet {
  readonly url: string;
  readonly #codes: ReadonlyMap<string, ReadonlySet<string>>;

  constructor(url: string, codes: ReadonlyMap<string, ReadonlySet<string>>) {
    this.url = url;
    this.#codes = codes;
  }

  /** A Coding's system and code. */
  hasCoding(system: string | undefined, code: string | undefined): boolean {
    return system !== undefined && code !== undefined && (this.#codes.get(system)?.has(code) ?? false);
  }

  /** A bare `code` element: its system is implied by the binding, so any system of the set will do. */
  hasCode(code: string): boolean {
    for (const codes of this.#codes.values()) if (codes.has(code)) return true;
    return false;
  }

  /** A few codes, for diagnostics. */
  sample(limit = 12): string[] {
    return [...this.#codes.values()].flatMap((codes) => [...codes]).slice(0, limit);
  }
}

const canonicalUrl = (canonical: string): string => canonical.split('|')[0] ?? canonical;

export class LocalTerminology {
  readonly #codeSystems = new Map<string, CodeSystem>();
  readonly #valueSets = new Map<string, ValueSet>();
  readonly #expanded = new Map<string, CodeSet>();

  constructor(codeSystems: readonly CodeSystem[], valueSets: readonly ValueSet[]) {
    for (const cs of codeSystems) if (cs.url) this.#codeSystems.set(cs.url, cs);
    for (const vs of valueSets) if (vs.url) this.#valueSets.set(vs.url, vs);
  }

  /**
   * The expansion of a ValueSet, or of a CodeSystem's implicit all-codes value set
   * (CodeSystem.valueSet), by canonical URL; undefined when neither is published locally.
   */
  resolve(canonical: string): CodeSet | undefined {
    const url = canonicalUrl(canonical);
    const cached = this.#expanded.get(url);
    if (cached) return cached;
    let codes: Map<string, Set<string>> | undefined;
    if (this.#valueSets.has(url)) codes = this.#expandValueSet(url, new Set());
    else {
      const system = [...this.#codeSystems.values()].find((cs) => cs.valueSet !== undefined && canonicalUrl(cs.valueSet) === url);
      if (system?.url) codes = new Map([[system.url, this.#allCodes(system.url)]]);
    }
    if (!codes) return undefined;
    const set = new CodeSet(url, codes);
    this.#expanded.set(url, set);
    return set;
  }

  #expandValueSet(url: string, visiting: Set<string>): Map<string, Set<string>> {
    if (visiting.has(url)) throw new TerminologyError(`ValueSet ${url} includes itself`);
    visiting.add(url);
    const vs = this.#valueSets.get(url);
    if (!vs) throw new TerminologyError(`ValueSet ${url} is not published in profiles/`);
    if (!vs.compose?.include.length) throw new TerminologyError(`ValueSet ${url} has no compose.include to expand`);
    const result = new Map<string, Set<string>>();
    const add = (system: string, codes: Iterable<string>): void => {
      const set = result.get(system) ?? new Set<string>();
      for (const c of codes) set.add(c);
      result.set(system, set);
    };
    for (const include of vs.compose.include) {
      if (include.filter?.length) throw new TerminologyError(`ValueSet ${url} uses compose filters, which cannot be expanded locally`);
      if (include.valueSet?.length && include.system) {
        throw new TerminologyError(`ValueSet ${url} intersects a system with value sets, which cannot be expanded locally`);
      }
      if (include.system) {
        add(include.system, include.concept ? include.concept.map((c) => c.code) : this.#allCodes(include.system));
      }
      for (const nested of include.valueSet ?? []) {
        for (const [system, codes] of this.#expandValueSet(canonicalUrl(nested), new Set(visiting))) add(system, codes);
      }
    }
    for (const exclude of vs.compose.exclude ?? []) {
      if (!exclude.system || !exclude.concept || exclude.filter?.length) {
        throw new TerminologyError(`ValueSet ${url} has an exclude other than enumerated concepts, which cannot be expanded locally`);
      }
      for (const c of exclude.concept) result.get(exclude.system)?.delete(c.code);
    }
    return result;
  }

  #allCodes(system: string): Set<string> {
    const cs = this.#codeSystems.get(system);
    if (!cs) throw new TerminologyError(`CodeSystem ${system} is not published in profiles/, so "all its codes" cannot be expanded`);
    if (cs.content !== 'complete') throw new TerminologyError(`CodeSystem ${system} has content '${cs.content}', not 'complete'`);
    const codes = new Set<string>();
    const walk = (concepts: readonly CodeSystemConcept[] | undefined): void => {
      for (const c of concepts ?? []) {
        codes.add(c.code);
        walk(c.concept);
      }
    };
    walk(cs.concept);
    return codes;
  }
}
