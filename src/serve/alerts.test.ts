/**
 * The shipped example alert rules (examples/prometheus-alerts.yaml) are valid
 * YAML in Prometheus' rule-file shape, and every expression names only
 * metrics, and labels of those metrics, that createMetrics exports: a renamed
 * metric breaks this test, not a user's alerting.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetrics } from './metrics.js';

const FILE = fileURLToPath(new URL('../../examples/prometheus-alerts.yaml', import.meta.url));

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const doc = parse(readFileSync(FILE, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
const rules = doc.groups.flatMap((g) => g.rules);

/** Metric name → its label names, as the module registers them. */
const exported = new Map(
  createMetrics()
    .registry.getMetricsAsArray()
    .map((m) => [m.name, (m as unknown as { labelNames: string[] }).labelNames] as const),
);

describe('examples/prometheus-alerts.yaml', () => {
  it('is a rule file: groups of rules with alert, expr, severity and summary', () => {
    expect(doc.groups.length).toBeGreaterThan(0);
    for (const r of rules) {
      expect(r.alert).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(typeof r.expr).toBe('string');
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smhdw]$/);
      expect(['warning', 'critical']).toContain(r.labels.severity);
      expect(r.annotations.summary).toBeTruthy();
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it('has the alerts the issue asks for', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect(byName.get('DefragdFragmentationHigh')).toMatchObject({ for: '30m' });
    expect(byName.get('DefragdFragmentationHigh')!.expr).toMatch(/defragd_member_fragmentation_ratio > 0\.5/);
    expect(byName.get('DefragdFragmentationHigh')!.expr).toMatch(/defragd_member_db_size_free_bytes > 100 \* 1024 \* 1024/);
    expect(byName.get('DefragdFragmentationHigh')!.expr).toMatch(/defragd_member_last_defrag_timestamp_seconds < 7 \* 86400/);
    expect(byName.get('DefragdNospaceAlarm')!.expr).toContain('alarm="NOSPACE"');
    expect(byName.get('DefragdQuotaUsageHigh')!.expr).toContain('defragd_member_quota_usage_ratio > 0.8');
    expect(byName.get('DefragdRunsFailing')!.expr).toContain('increase(defragd_runs_total{outcome="failed"}');
    expect(byName.get('DefragdMemberDown')!.expr).toContain('defragd_member_up == 0');
    expect(byName.get('DefragdObservationErrors')!.expr).toContain('defragd_observation_errors_total');
  });

  it.each(rules.map((r) => [r.alert, r] as const))('%s names only exported metrics and their labels', (_name, rule) => {
    const names = [...rule.expr.matchAll(/\bdefragd_[a-z_]+/g)].map((m) => m[0]);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect([...exported.keys()], `${n} is not exported`).toContain(n);

    const labelsInExpr = new Set(names.flatMap((n) => exported.get(n) ?? []));
    for (const [, metric, matchers] of rule.expr.matchAll(/\b(defragd_[a-z_]+)\{([^}]*)\}/g)) {
      for (const [, label] of matchers!.matchAll(/([a-z_]+)\s*(?:=|!=|=~|!~)\s*"/g)) {
        expect(exported.get(metric!), `${metric} has no label ${label}`).toContain(label);
      }
    }
    for (const [, list] of rule.expr.matchAll(/\b(?:on|by|ignoring|without)\s*\(([^)]*)\)/g)) {
      for (const label of list!
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean))
        expect([...labelsInExpr]).toContain(label);
    }
    for (const text of Object.values(rule.annotations)) {
      for (const [, label] of text.matchAll(/\$labels\.([a-z_]+)/g)) expect([...labelsInExpr]).toContain(label);
    }
  });
});
