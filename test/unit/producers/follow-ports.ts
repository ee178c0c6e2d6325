/**
 * In-memory ports for the follow strategies (producers/follow/*): an API that serves pages from arrays
 * and records every request, a commit that applies each step's state as the publisher does once its
 * transaction commits (or refuses it, to stand for a crash), and small resource declarations that page
 * by offset. No HTTP and no Kafka: a test sets the records, runs a walk and reads what was committed.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { configSchema } from '../../../core/config.ts';
import { createLogger } from '../../../core/log.ts';
import type { ResourceName } from '../../../core/resources.ts';
import type { EntityWindowOptions } from '../../../producers/follow/entity-window.ts';
import type { EngineContext, ResourceDeclaration, Step } from '../../../producers/follow/types.ts';
import type { ApiResponse, InstabaseClient, RequestSpec } from '../../../producers/instabase/client.ts';
import type { ResourceSpec } from '../../../producers/instabase/resource.ts';
import { StateStore } from '../../../producers/state-store.ts';

export type Item = Record<string, unknown>;

/** What the fake API answers a request with: a JSON body, or an error to throw (a failed request). */
export type Answer = unknown;

/** An API held in memory: a function per path template, every request recorded. */
export class MemoryApi {
  readonly requests: RequestSpec[] = [];
  readonly options = { maxPagesPerWalk: 1000 };
  private readonly routes = new Map<string, (req: RequestSpec) => Answer>();

  on(path: string, answer: (req: RequestSpec) => Answer): this {
    this.routes.set(path, answer);
    return this;
  }

  /** Serves `items()` (read at each request) by offset and limit from the query, under `key`. */
  list(path: string, key: string, items: (req: RequestSpec) => Item[]): this {
    return this.on(path, (req) => {
      const offset = Number(req.query?.offset ?? 0);
      const limit = Number(req.query?.limit ?? 100);
      return { [key]: items(req).slice(offset, offset + limit) };
    });
  }

  async request(req: RequestSpec): Promise<ApiResponse> {
    this.requests.push(req);
    const answer = this.routes.get(req.path);
    if (!answer) throw new Error(`no route ${req.path}`);
    const body = answer(req);
    if (body instanceof Error) throw body;
    return {
      status: 200,
      headers: {},
      body,
      text: JSON.stringify(body),
      endpoint: `${req.method} ${req.path}`,
      requestPath: req.path,
      attempts: 1,
    };
  }

  /** The requests made to `path`, as their query (offsets, bounds). */
  queries(path: string): Array<Record<string, unknown>> {
    return this.requests.filter((r) => r.path === path).map((r) => ({ ...r.query }));
  }
}

export interface Port {
  ctx: EngineContext;
  state: StateStore;
  /** Every step that committed, in order. */
  committed: Step[];
  /**
   * After `successes` more commits, makes the next one fail without applying anything (a transaction
   * that did not commit: a crash before it, or Kafka gone).
   */
  failCommitAfter(successes: number): void;
  setNow(ms: number): void;
}

/** `producers` settings go through the config's schema, as a user's would. */
export function port(api: MemoryApi, now = 1_000_000, producers: Record<string, unknown> = {}): Port {
  const logger = createLogger('follow-test');
  logger.level = 'silent';
  const config = configSchema.parse({
    instabase: { apiUrl: 'http://api.invalid/api', token: 't' },
    producers,
  });
  const state = new StateStore('state', 'follow-test');
  const committed: Step[] = [];
  let failAt: number | undefined;
  let clock = now;
  const ctx: EngineContext = {
    config,
    client: api as unknown as InstabaseClient,
    state,
    logger,
    async commit(step) {
      if (failAt !== undefined && failAt-- === 0) {
        failAt = undefined;
        throw new Error('transaction aborted');
      }
      committed.push(step);
      state.apply(step.state);
    },
    now: () => clock,
    signal: new AbortController().signal,
  };
  return {
    ctx,
    state,
    committed,
    failCommitAfter: (successes) => void (failAt = successes),
    setNow: (ms) => void (clock = ms),
  };
}

/** How a suite holds the keys its walks have seen (producers/follow/walk-keys.ts). */
export interface WalkKeysSetting {
  title: string;
  /** `producers` settings for port(). */
  producers: Record<string, unknown>;
  /** The scratch directory, which must be empty whenever no walk runs; removed by `cleanUp`. */
  dir?: string;
}

/**
 * The follow suites run twice: with their walks' keys in memory (the default), and with every key past
 * the first moved to a scratch store on disk, in a directory of the suite's own.
 */
export function walkKeysSettings(): WalkKeysSetting[] {
  const dir = mkdtempSync(join(tmpdir(), 'walk-keys-'));
  return [
    { title: 'keys in memory', producers: {} },
    { title: 'keys on disk past the first', producers: { walkKeysInMemory: 1, stateDir: dir }, dir },
  ];
}

/** What a setting's scratch directory still holds (nothing, once every walk has ended). */
export const leftOver = (s: WalkKeysSetting): string[] => (s.dir ? readdirSync(s.dir) : []);

export const cleanUp = (s: WalkKeysSetting): void => {
  if (s.dir) rmSync(s.dir, { recursive: true, force: true });
};

const item = z.object({ id: z.number(), v: z.string() }).passthrough();

/** A listing paged by ?offset=&limit= with `{ [key]: [...] }` bodies. */
export function offsetSpec(name: string, path: string, key: string, pageSize = 2): ResourceSpec<unknown> {
  return {
    name,
    method: 'GET',
    path,
    paginator: { kind: 'offset', limitParam: 'limit', offsetParam: 'offset', pageSize },
    dataSelector: key,
    dataOptional: true,
    record: item,
    contract: { file: 'openapi.yaml', operationId: name },
  };
}

/** A declaration keyed by the record's `id`. */
export function declaration(name: ResourceName, spec: ResourceSpec<unknown>): ResourceDeclaration {
  return { name, spec, key: (r) => String(r.id) };
}

/** What the committed steps emitted, as `key:v` (and `-key` for a tombstone). */
export const emitted = (p: Port): string[] =>
  p.committed.flatMap((s) =>
    s.emits.map((e) => (e.deleted ? `-${e.key}` : `${e.key}:${String(e.fields.v)}`)),
  );

/**
 * How the entity-window tests follow runs: listed by [from, to] in the query or by id, open while
 * RUNNING, ready (results due) once COMPLETE, timed by `t`.
 */
export const runsWindowOptions: EntityWindowOptions = {
  bounds: (from, to) => ({ from, to }),
  byKey: (key) => ({ id: key }),
  isOpen: (r) => r.v === 'RUNNING',
  isReady: (r) => r.v === 'COMPLETE',
  timeMs: (r) => r.t as number,
  lookbackMs: 10_000,
  initialLookbackMs: 100_000,
};
