// The built-in dashboard: the page at `/`, its script, style and Chart.js (served from node_modules: no
// CDN, no build step), and the JSON it polls. Served by `instabase-stream start` through core/http.ts,
// which answers /metrics and /healthz itself, before these routes.
//
// Auth: when http.token (DASHBOARD_TOKEN) is set, every route here needs `Authorization: Bearer <token>`
// or `?token=<token>`; /healthz never does (probes), and /metrics stays open as well (a Prometheus
// scrape target; it carries counters and resource names only, and redacted). Open
// `http://host:3000/?token=…`: the page passes the token on to its assets in the query and to the API
// in the Authorization header. Without a token the server binds 127.0.0.1 by default and warns when
// bound elsewhere (core/exposure.ts).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createClickHouse } from '../core/clickhouse.ts';
import type { Config } from '../core/config.ts';
import type { Route } from '../core/http.ts';
import { rootLogger, type Logger } from '../core/log.ts';
import { PACKAGE_ROOT } from '../core/package-root.ts';
import { redact } from '../core/secrets.ts';
import { TtlCache } from './dashboard/cache.ts';
import { clampMinutes, clickhouseSource, type DashboardSource } from './dashboard/queries.ts';

const STATIC_DIR = path.join(PACKAGE_ROOT, 'cli', 'dashboard', 'static');

/** Chart.js's self-contained UMD build (it bundles its one dependency), found through its package. */
function chartJsFile(): string {
  const main = createRequire(import.meta.url).resolve('chart.js');
  return path.join(path.dirname(main), 'chart.umd.min.js');
}

interface Asset {
  file: () => string;
  type: string;
}

const ASSETS: Record<string, Asset> = {
  '/assets/app.js': { file: () => path.join(STATIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/app.css': { file: () => path.join(STATIC_DIR, 'app.css'), type: 'text/css; charset=utf-8' },
  '/assets/chart.umd.min.js': { file: chartJsFile, type: 'text/javascript; charset=utf-8' },
};
const PAGES = new Set(['/', '/index.html']);
const API = new Set(['/api/pipeline', '/api/runs', '/api/audit', '/api/fields']);

/** The page's CSP: everything from this origin, nothing inline but Chart.js's canvas styles. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

export interface DashboardOptions {
  /** Where the numbers come from; defaults to ClickHouse and Kafka per the config. */
  source?: DashboardSource;
  /** How long an answer is reused for every caller (default 2 s). */
  cacheMs?: number;
  logger?: Logger;
}

export interface Dashboard {
  routes: Route[];
  /** Closes the data source's connections. */
  close(): Promise<void>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time comparison of the presented token with the configured one. */
export function tokenMatches(presented: string | null | undefined, expected: string): boolean {
  if (!presented) return false;
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The token a request presents: the Bearer header first, else `?token=`. */
export function presentedToken(req: IncomingMessage, url: URL): string | null {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : url.searchParams.get('token');
}

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function sendJson(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  const text = redact(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(head ? undefined : text);
}

export function createDashboard(config: Config, options: DashboardOptions = {}): Dashboard {
  const logger = options.logger ?? rootLogger.child({ component: 'dashboard' });
  const source = options.source ?? clickhouseSource(config, createClickHouse(config));
  const cache = new TtlCache(options.cacheMs ?? 2_000);
  const files = new Map<string, Promise<Buffer>>();
  const token = config.http.token;

  const readStatic = (file: string): Promise<Buffer> => {
    let content = files.get(file);
    if (!content) {
      content = readFile(file);
      content.catch(() => files.delete(file));
      files.set(file, content);
    }
    return content;
  };

  async function api(pathname: string, url: URL): Promise<unknown> {
    const minutes = clampMinutes(url.searchParams.get('minutes'));
    switch (pathname) {
      case '/api/pipeline':
        return cache.get('pipeline', () => source.pipeline());
      case '/api/runs':
        return cache.get(`runs:${minutes}`, () => source.runs(minutes));
      case '/api/audit':
        return cache.get(`audit:${minutes}`, () => source.audit(minutes));
      default:
        return cache.get('fields', () => source.fields());
    }
  }

  const route: Route = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const { pathname } = url;
    const isApi = API.has(pathname);
    if (!isApi && !PAGES.has(pathname) && !(pathname in ASSETS)) return false;
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('method not allowed\n');
      return true;
    }
    const presented = token ? presentedToken(req, url) : null;
    if (token && !tokenMatches(presented, token)) {
      const headers = { 'www-authenticate': 'Bearer realm="instabase-stream"', 'cache-control': 'no-store' };
      if (isApi) {
        res.writeHead(401, { ...headers, 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'unauthorized: send Authorization: Bearer <DASHBOARD_TOKEN>' }));
      } else {
        res.writeHead(401, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
        res.end('unauthorized: open this page with ?token=<DASHBOARD_TOKEN>\n');
      }
      return true;
    }

    if (isApi) {
      try {
        sendJson(res, 200, await api(pathname, url), head);
      } catch (err) {
        logger.warn({ err, path: pathname }, 'dashboard query failed');
        sendJson(res, 502, { error: redact((err as Error)?.message ?? String(err)) }, head);
      }
      return true;
    }

    if (PAGES.has(pathname)) {
      // Assets cannot send a header, so a token that came in the query goes on to them in theirs.
      const fromQuery = token && url.searchParams.get('token') === presented;
      const query = fromQuery ? `?token=${encodeURIComponent(presented!)}` : '';
      const html = (await readStatic(path.join(STATIC_DIR, 'index.html')))
        .toString('utf8')
        .replaceAll('__ASSET_QUERY__', escapeHtml(query));
      res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' });
      res.end(head ? undefined : html);
      return true;
    }

    const asset = ASSETS[pathname]!;
    const body = await readStatic(asset.file());
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(head ? undefined : body);
    return true;
  };

  return { routes: [route], close: () => source.close() };
}

/** The routes `instabase-stream start` serves; the connections live as long as the process. */
export function dashboardRoutes(config: Config): Route[] {
  return createDashboard(config).routes;
}
