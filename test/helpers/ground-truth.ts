/**
 * Key for key, what every `<resource>_current` view should hold (from the simulator's ground truth at
 * `/__sim/expected/<resource>`) against what it holds, as the same strings on both sides: the natural
 * key's fields joined with '|'. Audit entries have no id in the API, so both sides name them by the
 * `details.request_id` the simulator gives each entry (`req-<index>`).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { RESOURCE_NAMES, type ResourceName } from '../../core/resources.ts';
import type { Simulator } from '../../sim/index.ts';
import { select } from './sink-pipeline.ts';

interface ExpectedList<K> {
  total: number;
  keys: K[];
  invalidKeys: K[];
}

async function expected<T>(sim: Simulator, resource: string, query: Record<string, string> = {}): Promise<T> {
  const url = new URL(`${sim.origin}/__sim/expected/${resource}`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`GET ${url.pathname}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

const join = (...parts: Array<string | number>) => parts.map(String).join('|');

/** Per resource, the keys a clean, complete walk of the simulator at its current time publishes. */
export async function expectedKeys(
  sim: Simulator,
  docsPerFile: number,
): Promise<Record<ResourceName, Set<string>>> {
  const out = Object.fromEntries(RESOURCE_NAMES.map((r) => [r, new Set<string>()])) as Record<
    ResourceName,
    Set<string>
  >;
  const batches = await expected<ExpectedList<number>>(sim, 'batches');
  for (const id of batches.keys) out.batches.add(join(id));
  // A batch that breaks the contract still has its files walked: it has an id to ask with.
  for (const id of [...batches.keys, ...batches.invalidKeys]) {
    const files = await expected<ExpectedList<string>>(sim, 'batch_files', { batch_id: String(id) });
    for (const path of files.keys) out.batch_files.add(join(id, path));
  }
  const runs = await expected<ExpectedList<string>>(sim, 'runs');
  for (const id of runs.keys) out.runs.add(join(id));
  // A run's results are published only for valid runs that completed; the results route says which.
  for (const runId of runs.keys) {
    const files = await expected<ExpectedList<number>>(sim, 'runs_results', { run_id: runId });
    for (const file of files.keys)
      for (let doc = 0; doc < docsPerFile; doc++) out.runs_results.add(join(runId, file, doc));
  }
  const conversations = await expected<ExpectedList<string>>(sim, 'conversations');
  for (const id of conversations.keys) {
    out.conversations.add(join(id));
    const docs = await expected<ExpectedList<number>>(sim, 'conversation_documents', { conversation_id: id });
    for (const doc of docs.keys) {
      out.conversation_documents.add(join(id, doc));
      // No route serves document metadata; the same data object answers in process.
      if (sim.expected.documentMetadataValid(id, doc)) out.conversation_document_metadata.add(join(id, doc));
    }
  }
  const queries = await expected<Array<{ query_id: string; valid: boolean }>>(sim, 'queries_status');
  for (const q of queries) if (q.valid) out.queries_status.add(join(q.query_id));
  const files = await expected<Array<{ path: string; valid: boolean }>>(sim, 'files_metadata');
  for (const f of files) if (f.valid) out.files_metadata.add(join(f.path));
  // Unfiltered, the k-th entry of the listing is entry k; invalidKeys are positions too.
  const audit = await expected<ExpectedList<number>>(sim, 'audit_logs', { end_time: String(sim.now()) });
  const invalid = new Set(audit.invalidKeys);
  for (let k = 0; k < audit.total; k++) if (!invalid.has(k)) out.audit_logs.add(`req-${k}`);
  return out;
}

const KEY_SQL: Record<ResourceName, string> = {
  batches: 'toString(id)',
  batch_files: "concat(toString(batch_id), '|', full_path)",
  runs: 'id',
  runs_results: "concat(run_id, '|', toString(file_index), '|', toString(document_index))",
  conversations: 'id',
  conversation_documents: "concat(conversation_id, '|', toString(id))",
  conversation_document_metadata: "concat(conversation_id, '|', toString(id))",
  queries_status: 'query_id',
  files_metadata: 'path',
  // visitParamExtractString finds the field at any depth and exists on ClickHouse 18.16 too.
  audit_logs: "visitParamExtractString(_raw_json, 'request_id')",
};

/** Every key shown by `<resource>_current`, duplicates included (a visible duplicate is a failure). */
export async function currentKeys(
  ch: ClickHouseClient,
  database: string,
  resource: ResourceName,
): Promise<string[]> {
  const rows = await select<{ k: string }>(
    ch,
    `SELECT ${KEY_SQL[resource]} AS k FROM \`${database}\`.\`${resource}_current\``,
  );
  return rows.map((r) => r.k);
}

export interface KeyComparison {
  resource: ResourceName;
  expected: number;
  rows: number;
  missing: string[];
  extra: string[];
  duplicates: string[];
}

export function compareKeys(resource: ResourceName, want: Set<string>, rows: string[]): KeyComparison {
  const seen = new Set<string>();
  const duplicates = new Set<string>();
  for (const k of rows) {
    if (seen.has(k)) duplicates.add(k);
    seen.add(k);
  }
  return {
    resource,
    expected: want.size,
    rows: rows.length,
    missing: [...want].filter((k) => !seen.has(k)),
    extra: [...seen].filter((k) => !want.has(k)),
    duplicates: [...duplicates],
  };
}

/**
 * Every resource's `_current` on one server against the simulator's expected keys, each result said as a
 * line (`prefix` names the server when several are read).
 */
export async function compareAll(
  want: Record<ResourceName, Set<string>>,
  ch: ClickHouseClient,
  database: string,
  say: (line: string) => void,
  prefix = '',
): Promise<KeyComparison[]> {
  const results: KeyComparison[] = [];
  for (const resource of RESOURCE_NAMES) {
    const r = compareKeys(resource, want[resource], await currentKeys(ch, database, resource));
    results.push(r);
    say(
      `${prefix}${resource}: ${r.expected} expected, ${r.rows} rows; ${r.missing.length} missing, ` +
        `${r.extra.length} extra, ${r.duplicates.length} duplicated` +
        (r.missing.length ? ` (e.g. ${r.missing.slice(0, 3).join(', ')})` : ''),
    );
  }
  return results;
}
