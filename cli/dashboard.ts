import type { Config } from '../core/config.ts';
import type { Route } from '../core/http.ts';

/** The dashboard page and its data endpoints; filled in by the dashboard module. */
export function dashboardRoutes(_config: Config): Route[] {
  return [];
}
