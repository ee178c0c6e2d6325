import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.ts';
import { metricsRegistry } from './metrics.ts';
import { redact } from './secrets.ts';

export interface HealthReport {
  ok: boolean;
  [component: string]: unknown;
}

export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> | boolean;

export interface HttpServerOptions {
  host: string;
  port: number;
  health: () => HealthReport | Promise<HealthReport>;
  /** Extra handlers (the dashboard) tried in order; a handler returns true when it answered. */
  routes?: Route[];
  logger: Logger;
}

export interface RunningHttpServer {
  url: string;
  close(): Promise<void>;
}

/** /metrics (Prometheus text) and /healthz (JSON, 503 when unhealthy) for every daemon. */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      options.logger.error({ err }, 'http handler failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(redact(String((err as Error)?.message ?? err)));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': metricsRegistry.contentType });
      res.end(redact(await metricsRegistry.metrics()));
      return;
    }
    if (url.pathname === '/healthz') {
      const report = await options.health();
      res.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(redact(JSON.stringify(report)));
      return;
    }
    for (const route of options.routes ?? []) {
      if (await route(req, res, url)) return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  }

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolveListen());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}
