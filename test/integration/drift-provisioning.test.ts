import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { repoRoot } from '../../src/stack/paths';

/** promtool comes from Debian's `prometheus` package (installed by .ci/run), as in monitoring.test.ts. */
function promtool(args: string[]): { status: number | null; out: string } {
  const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (which.status !== 0) throw new Error('promtool not found: apt-get install -y prometheus');
  const res = spawnSync(which.stdout.trim(), args, { encoding: 'utf8' });
  return { status: res.status, out: `${res.stdout}${res.stderr}` };
}

const root = repoRoot();
const dashboard = JSON.parse(fs.readFileSync(path.join(root, 'grafana/dashboards/tributary.json'), 'utf8')) as { uid: string; panels: { title: string; targets?: { expr: string }[] }[] };
const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

/** Every tributary_* metric name the source registers (name: '...' in new Counter/Gauge/Histogram). */
function registeredMetricNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) for (const m of fs.readFileSync(p, 'utf8').matchAll(/name: '(tributary_[a-z0-9_]+)'/g)) names.add(m[1]);
    }
  };
  walk(path.join(root, 'src'));
  return names;
}

describe('Prometheus and Grafana provisioning (promtool)', () => {
  it('the Prometheus config and alert rules are valid', () => {
    const cfg = promtool(['check', 'config', path.join(root, 'monitoring/prometheus.yml')]);
    expect(cfg.out).toContain('SUCCESS');
    expect(cfg.status).toBe(0);
  });

  it('every dashboard and alert query parses and names only metrics tributary registers', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tributary-dash-'));
    const file = path.join(dir, 'rules.yml');
    fs.writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:expr_${i}`, expr })) }] }));
    const res = promtool(['check', 'rules', file]);
    expect(res.out).toContain(`SUCCESS: ${exprs.length} rules found`);
    fs.rmSync(dir, { recursive: true, force: true });

    const alerts = parse(fs.readFileSync(path.join(root, 'monitoring/alerts.yml'), 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    const known = registeredMetricNames();
    const used = [...exprs, ...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr))]
      .flatMap((e) => [...e.matchAll(/\b(tributary_[a-z0-9_]+?)(_bucket|_sum|_count)?\b/g)].map((m) => (known.has(m[1] + (m[2] ?? '')) ? m[1] + (m[2] ?? '') : m[1])));
    expect(used.filter((n) => !known.has(n))).toEqual([]);
    expect(dashboard.uid).toBe('tributary');
  });
});
