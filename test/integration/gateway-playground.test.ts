import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runGateway, type RunningGateway } from '../../src/gateway/run';
import { Pipeline } from '../../src/stages/pipeline';
import { repoRoot } from '../../src/stack/paths';
import { CdpBrowser } from '../helpers/cdp-browser';
import { isolatedTopology, testEndpoints, uniqueSuffix } from '../helpers/topology';

/** Event rows of the playground's table, in order. */
function rows(dom: string): string[] {
  return [...dom.matchAll(/<tr class="event-row" data-event="([a-z-]+)"/g)].map((m) => m[1]);
}

describe('gateway playground in a real headless browser (Chromium) against the real stack', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-playground-'));
  // The demo topology: extract → score, plus a shadow stage in its own group (a `shadow` event).
  const topology = isolatedTopology('topologies/fraud-demo.yaml', `pg${uniqueSuffix()}`, (spec) => {
    spec.stages[0].limits = { maxMessageBytes: 1024 };
  });
  let pipeline: Pipeline;
  let gateway: RunningGateway;
  let browser: CdpBrowser;
  /** The page's DOM once its request has finished (it sets data-done on <body>). */
  async function completed(query: string): Promise<{ dom: string; session: string }> {
    const session = await browser.open(`${gateway.url}/?autosend${query}`);
    await browser.waitFor(session, "document.body && document.body.dataset.done === 'true'", 30000);
    return { dom: await browser.html(session), session };
  }

  beforeAll(async () => {
    pipeline = await Pipeline.start({ topology, endpoints: testEndpoints() });
    gateway = await runGateway({ topology, endpoints: testEndpoints(), port: 0, leaseMs: 3000 });
    browser = new CdpBrowser(dir);
    // Warm both paths (prediction, dead letter) once so the page's request does not pay the first-fetch costs.
    const { example } = (await (await fetch(`${gateway.url}/v1/topology`)).json()) as { example: Record<string, unknown> };
    for (const body of [example, { ...example, merchantId: 'm'.repeat(1500) }]) await fetch(`${gateway.url}/v1/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }, 120000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await pipeline?.stop();
  }, 60000);

  it('builds the form from the schema with the example, streams the event and shows accepted, features, prediction, shadow and end with timings', async () => {
    const { dom } = await completed('');
    expect(dom).toContain('data-ready="true"');
    expect(dom).toContain('data-done="true"');
    for (const field of ['transactionId', 'cardId', 'merchantId', 'amount', 'currency', 'merchantCategory', 'country', 'eventTime']) expect(dom).toMatch(new RegExp(`id="f-${field}"`));
    expect(dom).toMatch(/<li data-stage="extract">/);
    expect(dom).toMatch(/<li data-stage="score">/);
    expect(dom).toMatch(/<li data-stage="shadow">/);
    expect(rows(dom)).toEqual(['accepted', 'features', 'prediction', 'shadow', 'end']);
    expect(dom).toMatch(/"shadow": "shadow"/);
    expect(dom).toMatch(/"modelName": "fraud"/);
    // Timing columns: server ms and browser ms are numbers.
    expect(dom).toMatch(/<td class="ev ev-prediction">prediction<\/td><td>\d+<\/td><td>\d+\.\d<\/td>/);
  }, 90000);

  it('shows the dead-letter event (stage and reason), the timeout (naming the stage) and the 400 for a bad event', async () => {
    const { dom: dl } = await completed(`&f.merchantId=${'m'.repeat(1500)}`);
    expect(rows(dl)).toEqual(['accepted', 'dead-letter', 'end']);
    expect(dl).toContain('TOO_LARGE');
    const { dom: late } = await completed('&timeoutMs=1');
    expect(rows(late).slice(-2)).toEqual(['timeout', 'end']);
    expect(late).toMatch(/"stage": "(extract|score|shadow)"/);
    const { dom: bad } = await completed('&f.amount=');
    expect(rows(bad)).toEqual(['error']);
    expect(bad).toMatch(/"status": 400/);
    expect(bad).toMatch(/"path": "amount"/);
  }, 90000);

  it('takes a screenshot of a completed request (docs/gateway-playground.png)', async () => {
    const out = path.join(dir, 'playground.png');
    const { session } = await completed('');
    const png = await browser.screenshot(session);
    fs.writeFileSync(out, png);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(20000);
    if (process.env.TRIBUTARY_UPDATE_SCREENSHOTS === '1') fs.copyFileSync(out, path.join(repoRoot(), 'docs', 'gateway-playground.png'));
  }, 90000);
});
