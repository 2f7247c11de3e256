import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('the committed binding and element tables (src/fhir/validation/*.json)', function () {
  this.timeout(60_000);

  it('are exactly what scripts/generate-bindings.mjs derives from the official R4 definitions', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['scripts/generate-bindings.mjs', '--check'], { cwd: root });
    expect(stdout).to.include('up to date');
  });
});
