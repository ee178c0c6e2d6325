// The simulator's HTTP server: authentication, faults and the virtual clock around the route table
// (./routes.ts, one module per resource in ./resources/) and the control routes (./control.ts).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createLogger, type Logger } from '../core/log.ts';
import { control, type Controlled } from './control.ts';
import {
  DEFAULT_GROWTH,
  DEFAULT_START_TIME,
  SimData,
  type EndlessMode,
  type SimGrowth,
  type SimScale,
} from './data.ts';
import { writeEarlyFault, writeJsonWithFault } from './fault-writer.ts';
import { FaultInjector, type FaultKind, type FaultOptions } from './faults.ts';
import { HttpError, readBody, writeError } from './http.ts';
import { DEFAULT_SCALE, expectedAt, SIM_RESOURCES } from './modules.ts';
import { dispatch } from './routes.ts';
import type { Expected, SimContext } from './serve.ts';

export type { Expected } from './serve.ts';

export interface SimulatorOptions {
  host?: string;
  /** 8700 by convention; 0 picks a free port. */
  port?: number;
  /** The only Bearer token accepted. */
  token?: string;
  /** When set, requests must carry this IB-Context or get 403. */
  context?: string;
  seed?: string | number;
  /** Virtual epoch ms at start; defaults to 2026-01-10T00:00:00Z so data is reproducible. */
  startTime?: number;
  scale?: Partial<SimScale>;
  growth?: Partial<SimGrowth>;
  faults?: Partial<FaultOptions>;
  /** Probability that a record is served breaking its schema (fixed per record by the seed). */
  badRecords?: number;
  edgeValues?: boolean;
  /** Misbehaving pagination, to prove the client cannot loop forever. */
  endless?: EndlessMode;
  /** Advance the virtual clock every tickMs of real time (0 = frozen unless advance() is called). */
  tickMs?: number;
  /** Virtual ms per real ms while ticking. */
  speed?: number;
  logger?: Logger;
}

export interface SimStats {
  requests: number;
  byStatus: Record<string, number>;
  faults: Record<FaultKind, number>;
}

export interface Simulator {
  /** Base URL to give the client, e.g. http://127.0.0.1:8700/api. */
  url: string;
  origin: string;
  port: number;
  token: string;
  data: SimData;
  /** Ground truth at the current virtual time: what a clean walk yields. */
  expected: Expected;
  now(): number;
  /** Moves the virtual clock forward: batches and audit entries appear, runs and queries finish. */
  advance(ms: number): void;
  setFaults(faults: Partial<FaultOptions>): void;
  setEndless(mode: EndlessMode): void;
  stats(): SimStats;
  close(): Promise<void>;
}

export const DEFAULT_SIM_PORT = 8700;
export const DEFAULT_SIM_TOKEN = 'sim-token';
const API_PREFIX = '/api';

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? DEFAULT_SIM_TOKEN;
  const log = opts.logger ?? createLogger('instabase-sim');
  const data = new SimData({
    seed: opts.seed ?? 1,
    startTime: opts.startTime ?? DEFAULT_START_TIME,
    scale: { ...DEFAULT_SCALE, ...opts.scale },
    growth: { ...DEFAULT_GROWTH, ...opts.growth },
    badRecords: opts.badRecords ?? 0,
    edgeValues: opts.edgeValues ?? false,
  });
  const faults = new FaultInjector(data.seed, opts.faults);
  let endless: EndlessMode = opts.endless ?? 'off';
  let offsetMs = 0;
  const now = () => data.opts.startTime + offsetMs;
  const stats: SimStats = { requests: 0, byStatus: {}, faults: faults.injected };
  const sockets = new Set<Socket>();
  const ctx: SimContext = { data, endless: () => endless, resources: SIM_RESOURCES };
  const expected = expectedAt(data, now);
  const controlled: Controlled = {
    data,
    now,
    endless: () => endless,
    faults: () => faults.options,
    stats: () => stats,
    advance: (ms) => sim.advance(ms),
    setFaults: (f) => sim.setFaults(f),
    expected,
  };

  const count = (status: number) => {
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://sim.invalid');
    const method = req.method ?? 'GET';
    const body = method === 'POST' ? await readBody(req) : '';
    if (url.pathname.startsWith('/__sim/')) {
      control(controlled, url, method, body, res);
      return;
    }
    stats.requests++;
    if (!url.pathname.startsWith(`${API_PREFIX}/`)) throw new HttpError(404, `no such path: ${url.pathname}`);
    if (req.headers.authorization !== `Bearer ${token}`) {
      throw new HttpError(401, 'Unauthorized: the API token is missing or invalid');
    }
    if (opts.context !== undefined && req.headers['ib-context'] !== opts.context) {
      throw new HttpError(403, 'Forbidden: this token has no access to the requested IB-Context');
    }
    const fault = faults.decide(`${method} ${url.pathname}${url.search} ${body}`, method === 'HEAD');
    if (fault?.kind === 'slow') await delay(faults.options.slowMs);
    if (fault && fault.kind !== 'slow' && writeEarlyFault(fault, faults.options, res, req.socket, count))
      return;
    const out = dispatch(ctx, method, url.pathname.slice(API_PREFIX.length), url.searchParams, body, now());
    if (out.kind === 'head') {
      res.writeHead(out.status, out.headers);
      res.end();
      count(out.status);
      return;
    }
    writeJsonWithFault(res, out.status, out.body, fault);
    count(out.status);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!(err instanceof HttpError)) log.error({ err }, 'simulator handler failed');
      count(writeError(req, res, err));
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_SIM_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let ticker: NodeJS.Timeout | undefined;
  if (opts.tickMs && opts.tickMs > 0) {
    const step = opts.tickMs * (opts.speed ?? 1);
    ticker = setInterval(() => (offsetMs += step), opts.tickMs);
    ticker.unref();
  }

  const sim: Simulator = {
    url: `${origin}${API_PREFIX}`,
    origin,
    port,
    token,
    data,
    now,
    advance(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error('advance: ms must be a non-negative number');
      offsetMs += ms;
    },
    setFaults: (f) => faults.set(f),
    setEndless: (mode) => {
      endless = mode;
    },
    stats: () => structuredClone(stats),
    expected,
    async close() {
      if (ticker) clearInterval(ticker);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
  return sim;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
