/** The PHI strings present in the fixtures (fixtures/referrals/phi-markers.json), for log checks. */
import { readFixture } from './fixtures.js';

export function phiMarkers(): string[] {
  const markers = readFixture<unknown>('referrals/phi-markers.json');
  const values: string[] = [];
  const collect = (value: unknown): void => {
    if (typeof value === 'string') values.push(value);
    else if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === 'object') Object.values(value).forEach(collect);
  };
  collect(markers);
  // Very short strings (a state code, a gender) would match by accident; they identify nobody.
  return [...new Set(values)].filter((v) => v.length >= 4);
}

export function phiFoundIn(lines: readonly string[]): Array<{ marker: string; line: string }> {
  const markers = phiMarkers();
  const found: Array<{ marker: string; line: string }> = [];
  for (const line of lines) {
    const lower = line.toLowerCase();
    for (const marker of markers) if (lower.includes(marker.toLowerCase())) found.push({ marker, line });
  }
  return found;
}
