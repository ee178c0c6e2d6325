// Deterministic batches-shaped records for the benchmark: record i is always the same, so the raw
// ceiling can rebuild exactly the rows the sink wrote without holding a million of them in memory.
import { createHash } from 'node:crypto';

const WORKSPACES = ['MyWorkspace', 'Finance', 'Claims', 'Onboarding', 'Legal'] as const;
const USERS = ['john.doe_acme.com', 'jane.roe_acme.com', 'li.wei_acme.com', 'ana.silva_acme.com'] as const;
const STATES = ['COMPLETE', 'RUNNING', 'PENDING', 'FAILED'] as const;
const SOURCES = ['upload', 'connector', 'api'] as const;
const TAGS = ['invoices', 'claims', 'kyc', 'contracts', 'receipts', 'w2', 'bank-statements'] as const;

/** 2024-01-01T00:00:00Z: creation times grow from here, one batch every 7 s or so. */
const EPOCH_MS = 1_704_067_200_000;
const FETCHED_AT_MS = 1_717_200_000_000;

/** A cheap, well-mixed 32-bit hash of (i, salt), so field values vary without a PRNG's state. */
function mix(i: number, salt: number): number {
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(salt + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

const pick = <T>(list: readonly T[], i: number, salt: number): T => list[mix(i, salt) % list.length] as T;

/**
 * The value record for batch index i (0-based), in the shape the producers write to the batches
 * topic: the envelope, the typed fields, and _raw_json holding the API object (about 340-370 bytes,
 * with a few fields the typed columns do not carry, as the real API has).
 */
export function batchRecord(i: number): Record<string, unknown> {
  const id = i + 1;
  const created = EPOCH_MS + i * 7_000 + (mix(i, 1) % 5_000);
  const updated = mix(i, 2) % 3 === 0 ? created + (mix(i, 3) % 86_400_000) : created;
  const workspace = pick(WORKSPACES, i, 4);
  const owner = pick(USERS, i, 5);
  const api = {
    id,
    name: `batch-${id}-${pick(TAGS, i, 6)}`,
    workspace,
    mount_point: 'Instabase Drive',
    repo_owner: 'acme_org',
    batch_owner: owner,
    created_at_ms: created,
    updated_at_ms: updated,
    path_suffix: `batches/${id}`,
    state: pick(STATES, i, 7),
    file_count: mix(i, 8) % 500,
    total_size_bytes: mix(i, 9) % 2_000_000_000,
    source: pick(SOURCES, i, 12),
    tags: [pick(TAGS, i, 10), pick(TAGS, i, 11)],
  };
  const raw = JSON.stringify(api);
  return {
    _source_endpoint: 'GET /v2/batches',
    _ib_context: i % 4 === 0 ? null : 'acme-org',
    _fetched_at: FETCHED_AT_MS + Math.floor(i / 100) * 30_000,
    _content_hash: createHash('sha256').update(raw).digest('hex'),
    _deleted: i % 97 === 96,
    _raw_json: raw,
    id,
    name: api.name,
    workspace,
    mount_point: api.mount_point,
    repo_owner: api.repo_owner,
    batch_owner: owner,
    created_at_ms: created,
    updated_at_ms: updated,
    path_suffix: api.path_suffix,
  };
}

/** The Kafka message key of record i: the natural key (id) as a string, as entityKey gives it. */
export const batchKey = (i: number): string => String(i + 1);
