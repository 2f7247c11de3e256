/**
 * The real process: what `npm start` runs (dist/main.js, compiled from src/ by
 * scripts/build-server.mjs), started as a child process.
 */
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readFixture, withOrderNumber } from '../support/fixtures.js';
import { buildCompiledGateway, startGatewayProcess } from '../support/process.js';
import { accessToken } from '../support/test-clients.js';

function startMain(env: Record<string, string>): { child: ChildProcess; lines: string[]; listening: Promise<number> } {
  return startGatewayProcess(env, { compiled: true });
}

function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('the gateway process', function () {
  this.timeout(60_000);
  let dataDir: string;
  before(() => buildCompiledGateway());
  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'gateway-main-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses to start on bad configuration, naming every variable to fix', async () => {
    const { child, lines } = startMain({ PORT: 'eighty', LOG_LEVEL: 'chatty', DATA_DIR: dataDir });
    expect(await exitCode(child)).to.equal(78);
    const output = lines.join('\n');
    expect(output).to.contain('Set PORT');
    expect(output).to.contain('Set LOG_LEVEL');
  });

  it('refuses to start with an invalid drug catalog and says which file and what is wrong', async () => {
    const { child, lines } = startMain({ PORT: '0', DATA_DIR: dataDir, DRUG_CATALOG: 'package.json' });
    expect(await exitCode(child)).to.equal(78);
    expect(lines.join('\n')).to.contain('DRUG_CATALOG');
  });

  it('refuses to start with a directory bundle the gateway refuses, naming each problem at its FHIRPath', async () => {
    const bundleFile = path.join(dataDir, 'bad-directory.json');
    const location = { resourceType: 'Location', id: 'bad-site', status: 'open-for-business', name: 'A site' };
    await writeFile(
      bundleFile,
      JSON.stringify({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: location, request: { method: 'PUT', url: 'Location/bad-site' } }],
      }),
    );
    const { child, lines } = startMain({ PORT: '0', DATA_DIR: dataDir, DIRECTORY_BUNDLE: bundleFile });
    expect(await exitCode(child)).to.equal(78);
    const output = lines.join('\n');
    expect(output).to.contain('DIRECTORY_BUNDLE');
    expect(output).to.contain('Bundle.entry[0].resource.status');
  });

  it('on SIGTERM finishes the request in flight, refuses new connections, and exits 0', async () => {
    const { child, lines, listening } = startMain({ PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir });
    const port = await listening;
    const body = JSON.stringify(withOrderNumber(readFixture('referrals/infliximab/service-request.json'), `sigterm-${randomUUID()}`));
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const response = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
      });
      socket.on('end', () => resolve(text));
      socket.on('close', () => resolve(text));
    });
    const half = Math.floor(body.length / 2);
    const token = await accessToken(`http://127.0.0.1:${port}`, { role: 'ehr' });
    socket.write(
      `POST /fhir/ServiceRequest HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/fhir+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`,
    );
    socket.write(body.slice(0, half));
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const refused = await new Promise<boolean>((resolve) => {
      const probe = net.connect(port, '127.0.0.1');
      probe.once('connect', () => {
        probe.destroy();
        resolve(false);
      });
      probe.once('error', () => resolve(true));
    });
    expect(refused, 'new connections are refused while shutting down').to.equal(true);
    socket.end(body.slice(half));
    expect(await response).to.match(/^HTTP\/1\.1 201 /);
    expect(await exitCode(child)).to.equal(0);
    expect(lines.some((l) => l.includes('"stopped"') || l.includes('"message":"stopped"'))).to.equal(true);
  });
});
