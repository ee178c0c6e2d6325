// The route table: every resource module's routes (./modules.ts). A request goes to the route whose
// pattern it matches; patterns ending in `**` are the fallbacks below a parent (an unknown parent is its
// 404, not "no route").
import { HttpError } from './http.ts';
import { SIM_RESOURCES } from './modules.ts';
import type { Reply, Route, SimContext, SimResource } from './serve.ts';

const ROUTES: Route[] = Object.values(SIM_RESOURCES).flatMap((r) => r.routes);
// Exact patterns first, then the `**` fallbacks; no two patterns of one kind match the same path.
const ORDERED = [
  ...ROUTES.filter((r) => !r.path.endsWith('/**')),
  ...ROUTES.filter((r) => r.path.endsWith('/**')),
];

const segments = (path: string): string[] => path.split('/').filter(Boolean);

interface Match {
  params: Record<string, string>;
  rest: string[];
}

function match(route: Route, method: string, path: string): Match | undefined {
  if (route.method !== method) return undefined;
  if (route.exact) return path === route.path ? { params: {}, rest: [] } : undefined;
  const pattern = segments(route.path);
  const seg = segments(path);
  const tail = pattern.at(-1) === '**';
  const fixed = tail ? pattern.slice(0, -1) : pattern;
  if (tail ? seg.length <= fixed.length : seg.length !== fixed.length) return undefined;
  const params: Record<string, string> = {};
  for (const [k, p] of fixed.entries()) {
    const s = seg[k]!;
    if (p.startsWith('{') && p.endsWith('}')) params[p.slice(1, -1)] = s;
    else if (p !== s) return undefined;
  }
  return { params, rest: seg.slice(fixed.length) };
}

/** The one method the simulator serves on a path (RFC 9110 wants it in the Allow header of a 405). */
function allowedMethod(path: string): string {
  if (path.startsWith('/v2/files/')) return 'HEAD';
  if (path === '/v1/auditlogs') return 'POST';
  return 'GET';
}

/** Answers an API request (the path below /api); throws HttpError for every status but 200 and HEAD's 404. */
export function dispatch(
  ctx: SimContext,
  method: string,
  path: string,
  query: URLSearchParams,
  body: string,
  now: number,
): Reply {
  for (const route of ORDERED) {
    const m = match(route, method, path);
    if (!m) continue;
    const reply = route.handle(ctx, { ...m, query, body, now });
    if (reply) return reply;
    break;
  }
  if (method === 'GET' || method === 'POST' || method === 'HEAD')
    throw new HttpError(404, `no route for ${method} ${path}`);
  throw new HttpError(405, `no route for ${method} ${path}`, { allow: allowedMethod(path) });
}

/** `GET /__sim/expected/<resource>`: the ground truth of each resource that has one. */
export const GROUND_TRUTH: Readonly<Record<string, NonNullable<SimResource['groundTruth']>>> =
  Object.fromEntries(
    Object.entries(SIM_RESOURCES).flatMap(([name, r]) => (r.groundTruth ? [[name, r.groundTruth]] : [])),
  );
