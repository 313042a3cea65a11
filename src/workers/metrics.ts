// /v1/metrics with proxy workers: the primary's registry and every worker's,
// combined by prom-client's AggregatorRegistry (counters and histograms summed;
// gauges by their `aggregator`, supervisor-metrics.ts), so the families and
// labels are exactly a single process's. The engine's metrics follow as usual (render.ts).
// What `collect` gives (primary.ts collectMetrics) never goes backwards: a worker
// that is slow to answer counts with its last answer, and exited workers' counters
// and histograms stay in as one retired snapshot (metric-snapshots.ts).
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { MetricsJson } from './messages.js';

/**
 * prom-client's default process metrics that must not be summed across
 * processes: its `omit` would drop the family, and a sum of limits is no
 * limit. They take the first registry's value: the primary's.
 */
const PRIMARY_VALUE = /(?:^|_)(?:process_start_time_seconds|process_max_fds)$/;

/** The text exposition of `own` (the primary's) and the workers' metrics, aggregated. */
export async function aggregateMetrics(own: Registry, collect: () => Promise<MetricsJson[]>): Promise<string> {
  const [mine, theirs] = await Promise.all([own.getMetricsAsJSON(), collect()]);
  const all = [mine, ...theirs].map((metrics) =>
    metrics.map((m) => (PRIMARY_VALUE.test(m.name) || m.aggregator === 'omit' ? { ...m, aggregator: 'first' as const } : m)),
  );
  return await AggregatorRegistry.aggregate(all).metrics();
}
