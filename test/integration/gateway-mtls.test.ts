import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { runGateway, type RunningGateway } from '../../src/gateway/run';
import { generateTlsMaterial, type TlsMaterial } from '../../src/stack/tls';
import { isolatedTopology, testEndpoints, uniqueSuffix } from '../helpers/topology';

/** One POST over HTTPS with an optional client certificate: the status, or the TLS error's message. */
function post(url: string, ca: string, client?: { cert: string; key: string }): Promise<number | string> {
  return new Promise((resolve) => {
    const req = https.request(`${url}/v1/predict?timeoutMs=100`, { method: 'POST', ca: fs.readFileSync(ca), ...(client ? { cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) } : {}), headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => resolve(err.message));
    req.end('{"not":"an event"}');
  });
}

describe('gateway over mutual TLS', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-gateway-mtls-'));
  let tls: TlsMaterial;
  let stranger: TlsMaterial;
  let gateway: RunningGateway;

  beforeAll(async () => {
    // The generated server certificate is also valid for client auth: it doubles as the client's.
    [tls, stranger] = await Promise.all([generateTlsMaterial(path.join(dir, 'ours')), generateTlsMaterial(path.join(dir, 'stranger'))]);
    const topology = isolatedTopology('topologies/fraud-detection.yaml', `mt${uniqueSuffix()}`);
    gateway = await runGateway({ topology, endpoints: testEndpoints(), port: 0, leaseMs: 3000, tls: { certFile: tls.certFile, keyFile: tls.keyFile, clientCaFile: tls.caFile } });
  }, 120000);

  afterAll(async () => {
    await gateway?.stop();
  }, 30000);

  it('serves HTTPS; a client certificate from the CA gets through (here a 400 for a bad event), none or a stranger\'s is refused in the handshake', async () => {
    expect(gateway.url).toMatch(/^https:\/\//);
    expect(await post(gateway.url, tls.caFile, { cert: tls.certFile, key: tls.keyFile })).toBe(400);
    const none = await post(gateway.url, tls.caFile);
    expect(typeof none).toBe('string');
    expect(String(none)).toMatch(/certificate|alert|socket hang up|ECONNRESET/i);
    const foreign = await post(gateway.url, tls.caFile, { cert: stranger.certFile, key: stranger.keyFile });
    expect(typeof foreign).toBe('string');
    expect(String(foreign)).toMatch(/certificate|alert|socket hang up|ECONNRESET/i);
  }, 60000);
});
