// The primary's memory of its proxy workers' metrics, so that the aggregated
// /v1/metrics never goes backwards. Prometheus reads any decrease of a counter
// (or of a histogram's buckets, sum and count) as a process restart, and
// rate()/increase() then count the whole value again as new. A sum over the
// workers that answer in time would drop a slow worker's share for one scrape,
// and a replaced worker's share for good. So:
//  - each worker's newest answer is kept, and stands in for it when it does not
//    answer a scrape in time (gauges included: it is alive, its last reading is
//    the best there is);
//  - when a worker exits, its counters and histograms are added into one kept
//    "retired" snapshot that every scrape includes. Gauges are not: they
//    describe the present, and a dead worker has nothing in flight.
// Memory stays bounded: one snapshot per live worker plus one retired snapshot,
// whose size is the label sets' (as any registry's), however many workers die.
import type { MetricsJson } from './messages.js';

type Family = MetricsJson[number];
/** A value as prom-client's getMetricsAsJSON() gives it (histograms name their series: `_bucket`, `_sum`, `_count`). */
type Value = Family['values'][number] & { metricName?: string };

/**
 * Counters and histograms whose values the aggregation sums (prom-client's
 * default aggregator for them): a retired worker's share of these must stay
 * in the sum. Anything aggregated otherwise, and every gauge, is left out.
 */
export function isCumulative(family: Pick<Family, 'type' | 'aggregator'>): boolean {
  // At run time `type` is 'counter', 'gauge', 'histogram' or 'summary' (prom-client's typings say a numeric enum).
  const type = family.type as unknown as string;
  return (type === 'counter' || type === 'histogram') && (family.aggregator ?? 'sum') === 'sum';
}

function seriesKey(v: Value): string {
  const labels = Object.keys(v.labels)
    .sort()
    .map((k) => `${k}=${String(v.labels[k])}`)
    .join(',');
  return `${v.metricName ?? ''}{${labels}}`;
}

/**
 * `retired` plus the cumulative families of `last` (see isCumulative), summed
 * per series (metric name and labels). Pure: neither input is changed.
 * @returns one snapshot in getMetricsAsJSON()'s shape, for AggregatorRegistry.aggregate.
 */
export function foldCumulative(retired: MetricsJson, last: MetricsJson): MetricsJson {
  const families = new Map<string, { family: Family; values: Map<string, Value> }>();
  const add = (family: Family): void => {
    if (!isCumulative(family)) return;
    let f = families.get(family.name);
    if (f === undefined) {
      f = { family, values: new Map() };
      families.set(family.name, f);
    }
    for (const v of family.values as Value[]) {
      const key = seriesKey(v);
      const had = f.values.get(key);
      f.values.set(key, had === undefined ? { ...v, labels: { ...v.labels } } : { ...had, value: had.value + v.value });
    }
  };
  for (const family of retired) add(family);
  for (const family of last) add(family);
  return [...families.values()].map(({ family, values }) => ({ ...family, values: [...values.values()] }));
}

/** The newest metrics of each live worker (by cluster worker id) and the retired workers' cumulative sum. */
export class WorkerMetricSnapshots {
  readonly #last = new Map<number, MetricsJson>();
  #retired: MetricsJson = [];

  /** A worker answered: this is its newest snapshot (answers arrive in order on its channel). */
  record(worker: number, metrics: MetricsJson): void {
    this.#last.set(worker, metrics);
  }

  /** The worker's newest snapshot, or undefined before its first answer. */
  last(worker: number): MetricsJson | undefined {
    return this.#last.get(worker);
  }

  /** The worker exited: its counters and histograms join the retired snapshot (synchronously: no scrape sees it in neither). */
  retire(worker: number): void {
    const last = this.#last.get(worker);
    this.#last.delete(worker);
    if (last !== undefined) this.#retired = foldCumulative(this.#retired, last);
  }

  /** Every exited worker's counters and histograms as one snapshot ([] while none has exited). */
  get retired(): MetricsJson {
    return this.#retired;
  }
}
