// docker-compose.yml, .env.example, Dockerfile, .dockerignore and deploy/docker/demo-switch.sh, checked by
// parsing them: no Docker engine is needed. Every check is a function returning its problems, run on the
// real files (no problems expected) and on a small bad sample (the problem must be found).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ConfigError, loadConfig, type Config } from '../../../core/config.ts';
import { DEFAULT_SIM_TOKEN } from '../../../sim/server.ts';
import { APICURIO_VERSION, KAFKA_VERSION } from '../../../stack/config.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

// --- compose model --------------------------------------------------------------------------------------

type Env = Record<string, string>;

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  entrypoint?: string | string[];
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | { target: number; published?: string | number; host_ip?: string })[];
  depends_on?: string[] | Record<string, { condition?: string; required?: boolean }>;
  healthcheck?: Healthcheck;
  volumes?: (string | { source?: string; target: string })[];
}

interface Compose {
  services: Record<string, Service>;
  [key: string]: unknown;
}

const COMPOSE_TEXT = read('docker-compose.yml');
// merge: true resolves the `<<: *app` merge keys the way compose does.
const COMPOSE = parseYaml(COMPOSE_TEXT, { merge: true }) as Compose;
const ENV_EXAMPLE = parseDotenv(read('.env.example'));

function service(name: string, compose: Compose = COMPOSE): Service {
  const s = compose.services[name];
  assert.ok(s, `docker-compose.yml has no service ${name}`);
  return s;
}

/** A service's environment as written (before ${VAR} substitution), list or map form. */
function rawEnvironment(s: Service): Env {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((line) => {
        const i = line.indexOf('=');
        return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function parseDotenv(text: string): Env {
  const out: Env = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    assert.ok(m, `.env line is not KEY=VALUE: ${line}`);
    out[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

// Compose interpolation: $$ is a literal $, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
// ${VAR?error}, and bare $VAR.
const INTERPOLATION = /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

function interpolate(value: string, vars: Env): string {
  return value.replace(
    INTERPOLATION,
    (_m, dollar?: string, name?: string, op?: string, arg?: string, bare?: string) => {
      if (dollar) return '$';
      const key = (name ?? bare) as string;
      const v = vars[key];
      const unsetOrEmpty = v === undefined || (op?.startsWith(':') === true && v === '');
      if (op?.endsWith('?') && unsetOrEmpty) throw new Error(`required variable ${key}: ${arg}`);
      if (op?.endsWith('-') && unsetOrEmpty) return arg ?? '';
      return v ?? '';
    },
  );
}

/** Every variable the text interpolates (not the `$$`-escaped ones, which the container's shell expands). */
function referencedVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(INTERPOLATION)) {
    if (m[1]) continue;
    names.add((m[2] ?? m[5]) as string);
  }
  return names;
}

function isReference(value: string): boolean {
  return /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?][^}]*)?\}$/.test(value);
}

function resolvedEnvironment(s: Service, vars: Env = ENV_EXAMPLE): Env {
  return Object.fromEntries(Object.entries(rawEnvironment(s)).map(([k, v]) => [k, interpolate(v, vars)]));
}

function healthcheckText(h: Healthcheck | undefined): string {
  if (!h?.test) return '';
  return Array.isArray(h.test) ? h.test.join(' ') : h.test;
}

function hasHealthcheck(s: Service): boolean {
  const t = s.healthcheck?.test;
  return !!t && !s.healthcheck?.disable && !(Array.isArray(t) && t[0] === 'NONE');
}

interface PortMapping {
  hostIp: string;
  published: number;
  target: number;
}

function publishedPorts(s: Service): PortMapping[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'object') {
      return { hostIp: p.host_ip ?? '', published: Number(p.published), target: Number(p.target) };
    }
    const parts = String(p)
      .replace(/\/(tcp|udp)$/, '')
      .split(':');
    const target = Number(parts.pop());
    const published = Number(parts.pop() ?? target);
    return { hostIp: parts.join(':'), published, target };
  });
}

// --- checks (each returns its problems) -------------------------------------------------------------------

const SECRET_KEY = /(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|PRIVATE_KEY|CREDENTIAL)/i;
/** A literal allowed as the default of a secret's ${VAR:-default}: none, or the simulator's public token. */
const PUBLIC_DEFAULTS = new Set(['', DEFAULT_SIM_TOKEN]);
const SECRET_FLAG =
  /(?:--?(?:password|passwd|token|secret)[= ]|(?:password|passwd|token|secret)=)\s*["']?([^\s"']+)/gi;
const URL_CREDENTIALS = /[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:([^@\s/]+)@/gi;

function findLiteralSecrets(compose: Compose): string[] {
  const problems: string[] = [];
  const literal = (v: string) => !v.startsWith('$');
  const scan = (text: string, where: string): void => {
    for (const m of text.matchAll(SECRET_FLAG)) {
      if (literal(m[1]!)) problems.push(`${where}: a literal secret after "${m[0].split(/[= ]/)[0]}"`);
    }
    for (const m of text.matchAll(URL_CREDENTIALS)) {
      if (literal(m[1]!)) problems.push(`${where}: a URL with a literal password`);
    }
  };
  const walk = (node: unknown, where: string): void => {
    if (typeof node === 'string') {
      scan(node, where);
    } else if (Array.isArray(node) && node.every((x) => typeof x === 'string')) {
      // An exec-form command: `--password`, `x` are two items.
      scan(node.join(' '), where);
    } else if (Array.isArray(node)) {
      node.forEach((x, i) => walk(x, `${where}[${i}]`));
    } else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) walk(v, `${where}.${k}`);
    }
  };
  for (const [name, s] of Object.entries(compose.services)) {
    for (const [key, value] of Object.entries(rawEnvironment(s))) {
      if (!SECRET_KEY.test(key) || key.endsWith('_FILE')) continue;
      const m = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?(?::?\?[^}]*)?\}$/.exec(value);
      if (!m || !isReference(value)) {
        problems.push(`services.${name}.environment.${key}: must be a \${VAR} reference, not a literal`);
      } else if (m[1] !== undefined && !PUBLIC_DEFAULTS.has(m[1])) {
        problems.push(`services.${name}.environment.${key}: the default "${m[1]}" is a literal secret`);
      }
    }
    walk(s, `services.${name}`);
  }
  return problems;
}

/** Placeholders only: a secret in .env.example is empty, a "change-me"/"replace" marker, or public. */
function findRealLookingSecrets(env: Env): string[] {
  return Object.entries(env)
    .filter(([k]) => SECRET_KEY.test(k))
    .filter(([, v]) => !PUBLIC_DEFAULTS.has(v) && !/change-?me|replace/i.test(v))
    .map(([k]) => `.env.example: ${k} does not look like a placeholder`);
}

function checkDependsOn(compose: Compose): string[] {
  const problems: string[] = [];
  for (const [name, s] of Object.entries(compose.services)) {
    if (!s.depends_on) continue;
    if (Array.isArray(s.depends_on)) {
      problems.push(`${name}: depends_on in the short form waits only for start, not for health`);
      continue;
    }
    for (const [dep, how] of Object.entries(s.depends_on)) {
      const target = compose.services[dep];
      if (!target) problems.push(`${name}: depends on ${dep}, which is not a service`);
      else if (!hasHealthcheck(target)) problems.push(`${name}: depends on ${dep}, which has no healthcheck`);
      if (how?.condition !== 'service_healthy') {
        problems.push(`${name}: depends on ${dep} with condition ${how?.condition ?? '(none)'}`);
      }
    }
  }
  return problems;
}

function checkEnvFileCoverage(composeText: string, env: Env): string[] {
  const problems: string[] = [];
  const used = referencedVariables(composeText);
  for (const name of used) {
    if (!(name in env)) problems.push(`\${${name}} is used but .env.example does not define it`);
  }
  for (const name of Object.keys(env)) {
    if (!used.has(name)) problems.push(`.env.example defines ${name}, which docker-compose.yml never reads`);
  }
  return problems;
}

/** Variable names of core/config.ts's ENV_MAP (private there), read off its source text. */
function configEnvNames(): Set<string> {
  const source = read('core/config.ts');
  const block = /const ENV_MAP\b[\s\S]*?=\s*\[\n([\s\S]*?)\n\];/.exec(source);
  assert.ok(block, 'ENV_MAP not found in core/config.ts');
  const names = [...block[1]!.matchAll(/\[\s*'([A-Z][A-Z0-9_]*)'\s*,\s*'[a-zA-Z.]+'/g)].map((m) => m[1]!);
  return new Set(names);
}

const ENV_NAMES = configEnvNames();
/** Read by deploy/docker/demo-switch.sh, which runs before the CLI in the producers container. */
const DEMO_SWITCH_VARS = ['DEMO_SIM_URL', 'DEMO_SIM_TOKEN'];
/** Read by node and glibc, not by the config: the producers' memory bounds (README: Producers' memory). */
const RUNTIME_VARS = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_'];

function usesDemoSwitch(s: Service): boolean {
  return ([] as string[]).concat(s.entrypoint ?? []).some((a) => a.endsWith('deploy/docker/demo-switch.sh'));
}

function unknownEnvNames(s: Service): string[] {
  const allowed = new Set([...ENV_NAMES, ...RUNTIME_VARS, ...(usesDemoSwitch(s) ? DEMO_SWITCH_VARS : [])]);
  return Object.keys(rawEnvironment(s)).filter(
    (k) => !allowed.has(k) && !(k.endsWith('_FILE') && ENV_NAMES.has(k.slice(0, -5))),
  );
}

function configFor(env: Env): Config {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'compose-env-'));
  try {
    // Only the service's environment: no config file, nothing from the machine running the test.
    return loadConfig({ env, cwd });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

// --- Dockerfile ------------------------------------------------------------------------------------------

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

/** Instructions with continuation lines joined and comments dropped, grouped by stage. */
function dockerfileStages(text: string): { args: string[]; stages: Stage[] } {
  const instructions = text
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args: string[] = [];
  const stages: Stage[] = [];
  for (const line of instructions) {
    const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1]!, ...(from[2] ? { name: from[2] } : {}), lines: [] });
    else if (stages.length) stages[stages.length - 1]!.lines.push(line);
    else args.push(line);
  }
  return { args, stages };
}

function instructionArgs(line: string): string[] {
  const rest = line.replace(/^\S+\s+/, '');
  if (rest.startsWith('[')) return JSON.parse(rest) as string[];
  return rest.split(/\s+/);
}

function checkDockerfile(text: string): string[] {
  const problems: string[] = [];
  const { args, stages } = dockerfileStages(text);
  if (stages.length < 2)
    problems.push(`${stages.length} FROM stage(s); expected a build and a runtime stage`);
  const runtime = stages[stages.length - 1];
  if (!runtime) return [...problems, 'no FROM'];
  const defaults = Object.fromEntries(
    args.map((a) => /^ARG\s+(\w+)=(\S+)/i.exec(a)).flatMap((m) => (m ? [[m[1]!, m[2]!]] : [])),
  );
  for (const s of stages) {
    const image = s.from.replace(/\$\{?(\w+)\}?/g, (_m, v: string) => defaults[v] ?? '');
    const known = stages.some((o) => o.name === s.from);
    if (!known && !/^node:20[.-]/.test(image)) problems.push(`stage FROM ${s.from}: not a Node 20 image`);
  }
  const build = stages.slice(0, -1);
  if (!build.some((s) => s.lines.some((l) => /^RUN\b.*\bnpm ci\b/.test(l)))) {
    problems.push('no build stage runs npm ci');
  }
  if (!runtime.lines.some((l) => /^COPY\s+--from=\S+\s+\S*node_modules/.test(l))) {
    problems.push('the runtime stage does not copy node_modules from a build stage');
  }
  const user = runtime.lines.filter((l) => /^USER\b/i.test(l)).pop();
  if (!user || /^USER\s+(root|0)(:|\s|$)/i.test(user)) problems.push('the runtime stage runs as root');
  if (!build.some((s) => s.lines.some((l) => /^RUN\b.*\bnpm run build\b/.test(l)))) {
    problems.push('no build stage runs npm run build');
  }
  if (!runtime.lines.some((l) => /^COPY\s+--from=\S+\s+\S*dist\b/.test(l))) {
    problems.push('the runtime stage does not copy dist/ from a build stage');
  }
  const entry = runtime.lines.filter((l) => /^ENTRYPOINT\b/i.test(l)).pop();
  if (!entry || !/dist\/cli\/main\.js/.test(entry) || /\btsx\b/.test(entry)) {
    problems.push('ENTRYPOINT does not run the build (dist/cli/main.js) with plain node');
  }
  const health = runtime.lines.filter((l) => /^HEALTHCHECK\b/i.test(l)).pop();
  if (!health || !/\/healthz/.test(health) || /\bcurl\b/.test(health)) {
    problems.push('no HEALTHCHECK on /healthz without curl');
  }
  return problems;
}

/** Top-level folders of the repository that the module graph of `entry` reaches (relative imports only). */
function sourceFoldersReachedFrom(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [path.join(ROOT, entry)];
  const specifiers = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+|new URL\(\s*)'(\.{1,2}\/[^']+)'/g;
  while (queue.length) {
    const file = queue.pop() as string;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    if (!file.endsWith('.ts')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(specifiers)) {
      queue.push(path.resolve(path.dirname(file), m[1]!));
    }
  }
  return new Set([...seen].map((f) => path.relative(ROOT, f).split(path.sep)[0]!));
}

/** What a stage copies from the build context (the runtime stage by default). */
function runtimeCopies(text: string, stage: 'build' | 'runtime' = 'runtime'): Set<string> {
  const { stages } = dockerfileStages(text);
  const chosen = (stage === 'runtime' ? stages[stages.length - 1] : stages[0]) as Stage;
  const sources = new Set<string>();
  for (const line of chosen.lines) {
    if (!/^COPY\b/i.test(line) || /--from=/.test(line)) continue;
    const parts = instructionArgs(line).filter((a) => !a.startsWith('--'));
    for (const src of parts.slice(0, -1)) sources.add(src.replace(/^\.\//, '').replace(/\/$/, ''));
  }
  return sources;
}

function dockerignored(patterns: string[], file: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const p = (negate ? raw.slice(1) : raw).replace(/^\/|\/$/g, '');
    // Go's filepath.Match syntax as Docker uses it, plus `**` for any number of folders.
    const body = p
      .split('**')
      .map((part) =>
        part
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]'),
      )
      .join('.*');
    const re = new RegExp(`^${body}(/.*)?$`);
    if (re.test(file)) ignored = !negate;
  }
  return ignored;
}

const DOCKERIGNORE = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

// --- tests -----------------------------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  it('has the services, in the profiles, that the docs and scripts name', () => {
    assert.deepEqual(Object.keys(COMPOSE.services).sort(), [
      'clickhouse',
      'grafana',
      'instabase-sim',
      'kafka',
      'producers',
      'schema-registry',
      'sinks',
    ]);
    assert.equal('version' in COMPOSE, false, 'the compose spec has no version key');
    const profiles = Object.fromEntries(
      Object.entries(COMPOSE.services).map(([n, s]) => [n, (s.profiles ?? []).join(',')]),
    );
    assert.deepEqual(profiles, {
      kafka: '',
      'schema-registry': '',
      clickhouse: '',
      producers: '',
      sinks: '',
      'instabase-sim': 'demo',
      grafana: 'dashboards',
    });
  });

  it('runs the same image for producers, sinks and simulator, built from the Dockerfile', () => {
    const images = ['producers', 'sinks', 'instabase-sim'].map((n) => service(n).image);
    assert.equal(new Set(images).size, 1, `one image: ${images.join(', ')}`);
    for (const n of ['producers', 'sinks', 'instabase-sim']) assert.ok(service(n).build, `${n} builds`);
    assert.deepEqual(service('producers').command, ['producers']);
    assert.deepEqual(service('sinks').command, ['sinks']);
  });

  it('pins the Kafka and Apicurio versions the local stack runs, and no image floats on latest', () => {
    assert.equal(service('kafka').image, `apache/kafka:${KAFKA_VERSION}`);
    assert.equal(service('schema-registry').image, `apicurio/apicurio-registry:${APICURIO_VERSION}`);
    for (const [name, s] of Object.entries(COMPOSE.services)) {
      assert.match(String(s.image), /:[^:/]+$/, `${name}: image without a tag`);
      assert.doesNotMatch(String(s.image), /:latest$/, `${name}: image on latest`);
    }
  });

  it('publishes the ports of CONVENTIONS.md, on 127.0.0.1 only, with no host port used twice', () => {
    const mapping = Object.fromEntries(
      Object.entries(COMPOSE.services).map(([n, s]) => [
        n,
        publishedPorts(s).map((p) => `${p.hostIp}:${p.published}:${p.target}`),
      ]),
    );
    assert.deepEqual(mapping, {
      kafka: ['127.0.0.1:9092:9092'],
      'schema-registry': ['127.0.0.1:8081:8080'],
      clickhouse: ['127.0.0.1:8123:8123', '127.0.0.1:9000:9000'],
      producers: ['127.0.0.1:3000:3000'],
      sinks: ['127.0.0.1:3001:3000'],
      'instabase-sim': ['127.0.0.1:8700:8700'],
      grafana: ['127.0.0.1:3300:3000'],
    });
    const hostPorts = Object.values(COMPOSE.services).flatMap((s) =>
      publishedPorts(s).map((p) => p.published),
    );
    assert.equal(new Set(hostPorts).size, hostPorts.length, 'a host port is published twice');
  });

  it('matches the port table of CONVENTIONS.md', () => {
    const file = path.join(ROOT, 'CONVENTIONS.md');
    const text = readFileSync(file, 'utf8');
    const section = text.slice(text.indexOf('## Processes and ports'));
    const portOf = (label: RegExp): number[] => {
      const row = section.split('\n').find((l) => l.startsWith('|') && label.test(l));
      assert.ok(row, `CONVENTIONS.md has no port row matching ${label}`);
      return [...row.split('|')[2]!.matchAll(/\d+/g)].map((m) => Number(m[0]));
    };
    const published = (name: string) => publishedPorts(service(name)).map((p) => p.published);
    assert.deepEqual(portOf(/Kafka/).slice(0, 1), published('kafka'));
    assert.deepEqual(portOf(/registry/), published('schema-registry'));
    assert.deepEqual(portOf(/ClickHouse/), published('clickhouse'));
    assert.deepEqual(portOf(/simulator/), published('instabase-sim'));
    assert.deepEqual(portOf(/metrics/), published('producers'));
  });

  it('makes every depends_on wait for a healthcheck', () => {
    assert.deepEqual(checkDependsOn(COMPOSE), []);
    for (const name of Object.keys(COMPOSE.services)) {
      assert.ok(hasHealthcheck(service(name)), `${name} has no healthcheck`);
    }
    const bad = {
      services: {
        a: { depends_on: ['b'] },
        b: {},
        c: { depends_on: { b: { condition: 'service_started' }, d: { condition: 'service_healthy' } } },
      },
    } as Compose;
    assert.deepEqual(checkDependsOn(bad), [
      'a: depends_on in the short form waits only for start, not for health',
      'c: depends on b, which has no healthcheck',
      'c: depends on b with condition service_started',
      'c: depends on d, which is not a service',
    ]);
  });

  it('starts producers and sinks only once their services are healthy, and the demo only optionally', () => {
    const deps = (n: string) => service(n).depends_on as Record<string, { required?: boolean }>;
    assert.deepEqual(Object.keys(deps('producers')).sort(), ['instabase-sim', 'kafka', 'schema-registry']);
    assert.equal(deps('producers')['instabase-sim']!.required, false, 'instabase-sim exists only under demo');
    assert.deepEqual(Object.keys(deps('sinks')).sort(), ['clickhouse', 'kafka', 'schema-registry']);
    assert.deepEqual(Object.keys(deps('grafana')), ['clickhouse']);
  });

  it('health-checks producers and sinks on /healthz at their HTTP_PORT', () => {
    for (const name of ['producers', 'sinks']) {
      const s = service(name);
      const env = resolvedEnvironment(s);
      assert.equal(env.HTTP_HOST, '0.0.0.0', `${name}: /healthz must be reachable from outside`);
      const test = healthcheckText(s.healthcheck);
      assert.match(test, new RegExp(`127\\.0\\.0\\.1:${env.HTTP_PORT}/healthz`), `${name}: ${test}`);
      assert.doesNotMatch(test, /\bcurl\b/, 'node:20-bookworm-slim has no curl');
      assert.ok(
        publishedPorts(s).some((p) => p.target === Number(env.HTTP_PORT)),
        `${name}: HTTP_PORT is not the published container port`,
      );
    }
  });

  it('writes no literal secret: passwords and tokens are ${VAR} references', () => {
    assert.deepEqual(findLiteralSecrets(COMPOSE), []);
    const bad = {
      services: {
        x: {
          environment: {
            CLICKHOUSE_PASSWORD: 'hunter2',
            INSTABASE_API_TOKEN: '${INSTABASE_API_TOKEN:-abc123}',
            DEMO_SIM_TOKEN: `\${SIM_TOKEN:-${DEFAULT_SIM_TOKEN}}`,
            CLICKHOUSE_PASSWORD_FILE: '/run/secrets/ch',
          },
          command: ['--password', 'hunter2', '--token=$${TOKEN}'],
          healthcheck: { test: ['CMD', 'wget', 'http://u:pw@host/'] },
        },
      },
    } as unknown as Compose;
    assert.deepEqual(findLiteralSecrets(bad), [
      'services.x.environment.CLICKHOUSE_PASSWORD: must be a ${VAR} reference, not a literal',
      'services.x.environment.INSTABASE_API_TOKEN: the default "abc123" is a literal secret',
      'services.x.command: a literal secret after "--password"',
      'services.x.healthcheck.test: a URL with a literal password',
    ]);
  });

  it('has .env.example define every ${VAR} the compose file reads, and nothing else', () => {
    assert.deepEqual(checkEnvFileCoverage(COMPOSE_TEXT, ENV_EXAMPLE), []);
    assert.deepEqual(checkEnvFileCoverage('a: ${NOT_THERE:-x} $$ESCAPED $BARE', { BARE: '', UNUSED: '' }), [
      '${NOT_THERE} is used but .env.example does not define it',
      '.env.example defines UNUSED, which docker-compose.yml never reads',
    ]);
  });

  it('ships only placeholders in .env.example', () => {
    assert.deepEqual(findRealLookingSecrets(ENV_EXAMPLE), []);
    assert.deepEqual(
      findRealLookingSecrets({ CLICKHOUSE_PASSWORD: 's3cr3t', SIM_TOKEN: DEFAULT_SIM_TOKEN }),
      ['.env.example: CLICKHOUSE_PASSWORD does not look like a placeholder'],
    );
    assert.ok(read('.gitignore').split('\n').includes('.env'), '.env must stay git-ignored');
  });

  it('interpolates like compose, and fails on a required variable that is missing', () => {
    assert.equal(interpolate('${A:-x}/${B-y}/${C}/$$D/$A', { A: '', B: '' }), 'x///$D/');
    assert.throws(() => interpolate('${P:?set P}', {}), /required variable P: set P/);
    assert.throws(() => interpolate('${P:?set P}', { P: '' }), /required variable P/);
    for (const name of ['clickhouse', 'sinks', 'grafana']) {
      assert.throws(() => resolvedEnvironment(service(name), {}), /CLICKHOUSE_PASSWORD/, `${name}`);
    }
  });
});

describe('the environment of producers and sinks', () => {
  it('names only variables that core/config.ts reads (or the demo switch consumes)', () => {
    assert.ok(ENV_NAMES.has('INSTABASE_API_URL') && ENV_NAMES.has('HTTP_HOST') && ENV_NAMES.size > 20);
    for (const name of ['producers', 'sinks']) assert.deepEqual(unknownEnvNames(service(name)), [], name);
    assert.deepEqual(unknownEnvNames({ environment: { KAFKA_BROKER: 'x', DEMO_SIM_URL: 'y' } }), [
      'KAFKA_BROKER',
      'DEMO_SIM_URL',
    ]);
    assert.deepEqual(unknownEnvNames({ environment: ['CLICKHOUSE_PASSWORD_FILE=/run/s', 'NOPE_FILE=x'] }), [
      'NOPE_FILE',
    ]);
  });

  it('loads with the values of .env.example and points at the compose services', () => {
    const producers = configFor(resolvedEnvironment(service('producers')));
    assert.equal(producers.instabase.apiUrl, ENV_EXAMPLE.INSTABASE_API_URL);
    assert.equal(producers.instabase.token, ENV_EXAMPLE.INSTABASE_API_TOKEN);
    const sinks = configFor(resolvedEnvironment(service('sinks')));
    assert.equal(sinks.clickhouse.password, ENV_EXAMPLE.CLICKHOUSE_PASSWORD);
    assert.equal(sinks.clickhouse.database, ENV_EXAMPLE.CLICKHOUSE_DATABASE);

    const kafkaEnv = resolvedEnvironment(service('kafka'));
    const advertised = kafkaEnv.KAFKA_ADVERTISED_LISTENERS!.split(',').map((l) => l.replace(/^\w+:\/\//, ''));
    const registryPort = publishedPorts(service('schema-registry'))[0]!.target;
    for (const config of [producers, sinks]) {
      assert.deepEqual(config.kafka.brokers, ['kafka:29092']);
      assert.ok(advertised.includes(config.kafka.brokers[0]!), 'KAFKA_BROKERS is an advertised listener');
      assert.equal(config.registry.url, `http://schema-registry:${registryPort}/apis/ccompat/v7`);
      assert.equal(config.http.host, '0.0.0.0');
      assert.equal(config.http.port, 3000);
      assert.equal(config.kafka.topicPrefix, ENV_EXAMPLE.TOPIC_PREFIX);
    }
    const clickhousePorts = publishedPorts(service('clickhouse')).map((p) => p.target);
    const chUrl = new URL(sinks.clickhouse.url);
    assert.equal(chUrl.hostname, 'clickhouse');
    assert.ok(clickhousePorts.includes(Number(chUrl.port)));
  });

  it('is what loadConfig rejects when a value is wrong', () => {
    const env = { ...resolvedEnvironment(service('sinks')), KAFKA_BROKERS: 'kafka', HTTP_PORT: 'x' };
    assert.throws(
      () => configFor(env),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => p.startsWith('kafka.brokers')) &&
        err.problems.some((p) => p.startsWith('http.port')),
    );
  });

  it('falls back to the real API without a token in .env, and to defaults for the optional values', () => {
    const vars = { CLICKHOUSE_PASSWORD: 'change-me' };
    const producers = configFor(resolvedEnvironment(service('producers'), vars));
    assert.equal(producers.instabase.apiUrl, 'https://aihub.instabase.com/api');
    assert.equal(producers.instabase.token, undefined);
    assert.equal(producers.instabase.context, undefined);
    const sinks = configFor(resolvedEnvironment(service('sinks'), vars));
    assert.equal(sinks.clickhouse.user, 'default');
    assert.equal(sinks.clickhouse.database, 'instabase');
    assert.equal(sinks.sinks.group, 'instabase-clickhouse-sink');
  });
});

describe('the demo profile', () => {
  const sim = service('instabase-sim');
  const producers = service('producers');
  const simCommand = [
    ...([] as string[]).concat(sim.entrypoint ?? []),
    ...([] as string[]).concat(sim.command ?? []),
  ].join(' ');

  it('runs the simulator live, on 0.0.0.0:8700, with the token the producers are given', () => {
    assert.match(simCommand, /node dist\/sim\/cli\.js/);
    assert.match(simCommand, /--host 0\.0\.0\.0/);
    assert.match(simCommand, /--port 8700\b/);
    assert.match(simCommand, /--live\b/);
    assert.match(simCommand, /--start-time\b/, 'the virtual clock must start now, inside the look-back');
    assert.match(simCommand, /--token "\$\$SIM_TOKEN"/);
    assert.equal(rawEnvironment(sim).SIM_TOKEN, rawEnvironment(producers).DEMO_SIM_TOKEN);
    assert.equal(rawEnvironment(producers).DEMO_SIM_URL, 'http://instabase-sim:8700/api');
    assert.match(healthcheckText(sim.healthcheck), /127\.0\.0\.1:8700\/__sim\/state/);
    assert.ok(usesDemoSwitch(producers), 'the producers start through deploy/docker/demo-switch.sh');
    assert.deepEqual(([] as string[]).concat(producers.entrypoint ?? []).slice(-2), [
      'node',
      'dist/cli/main.js',
    ]);
    const script = read('deploy/docker/demo-switch.sh');
    for (const v of DEMO_SWITCH_VARS) assert.match(script, new RegExp(`\\b${v}\\b`));
  });

  const runSwitch = (env: Env): Env => {
    const r = spawnSync(
      'sh',
      [
        'deploy/docker/demo-switch.sh',
        process.execPath,
        '-e',
        'process.stdout.write(JSON.stringify(process.env))',
      ],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as Env;
  };
  const skipSh = process.platform === 'win32' ? 'needs a POSIX sh' : false;

  it('points the producers at the simulator when its host resolves', { skip: skipSh }, () => {
    const env = resolvedEnvironment(producers);
    const out = runSwitch({ ...env, DEMO_SIM_URL: env.DEMO_SIM_URL!.replace('instabase-sim', 'localhost') });
    assert.equal(out.INSTABASE_API_URL, 'http://localhost:8700/api');
    assert.equal(out.INSTABASE_API_TOKEN, ENV_EXAMPLE.SIM_TOKEN);
    assert.equal(out.DEMO_SIM_URL, undefined);
    assert.equal(out.DEMO_SIM_TOKEN, undefined);
    const config = configFor(out);
    assert.equal(config.instabase.apiUrl, 'http://localhost:8700/api');
    assert.equal(config.instabase.token, ENV_EXAMPLE.SIM_TOKEN);
  });

  it('leaves the real API and token alone without the demo profile', { skip: skipSh }, () => {
    const env = resolvedEnvironment(producers);
    const out = runSwitch({ ...env, DEMO_SIM_URL: 'http://instabase-sim.invalid:8700/api' });
    assert.equal(out.INSTABASE_API_URL, ENV_EXAMPLE.INSTABASE_API_URL);
    assert.equal(out.INSTABASE_API_TOKEN, ENV_EXAMPLE.INSTABASE_API_TOKEN);
    assert.equal(out.DEMO_SIM_URL, undefined);
  });
});

describe('the services around the pipeline', () => {
  it('runs Kafka as one KRaft node with the settings of the local stack', () => {
    const env = resolvedEnvironment(service('kafka'));
    assert.equal(env.KAFKA_PROCESS_ROLES, 'broker,controller');
    assert.ok(env.KAFKA_NODE_ID);
    assert.match(env.KAFKA_LISTENERS!, /:9092\b/);
    assert.match(env.KAFKA_LISTENERS!, /CONTROLLER:\/\/[^,]*:9093\b/);
    assert.match(env.KAFKA_CONTROLLER_QUORUM_VOTERS!, /^1@kafka:9093$/);
    assert.match(env.KAFKA_ADVERTISED_LISTENERS!, /\/\/127\.0\.0\.1:9092\b/);
    assert.equal(env.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, '1');
    assert.equal(env.KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR, '1');
    assert.equal(env.KAFKA_TRANSACTION_STATE_LOG_MIN_ISR, '1');
    assert.equal(env.KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS, '0');
    assert.equal(env.KAFKA_AUTO_CREATE_TOPICS_ENABLE, 'false');
    assert.match(
      healthcheckText(service('kafka').healthcheck),
      /\/opt\/kafka\/bin\/kafka-broker-api-versions\.sh/,
    );
  });

  it('configures Apicurio with every apicurio.* setting of stack/registry.ts, as environment variables', () => {
    const source = read('stack/registry.ts');
    const settings = [...source.matchAll(/^(apicurio\.[a-z0-9.-]+)=(.*)$/gm)].filter(
      (m) => !m[2]!.includes('${'),
    );
    assert.ok(settings.length >= 6, 'settings found in stack/registry.ts');
    const env = resolvedEnvironment(service('schema-registry'));
    for (const [, key, value] of settings) {
      const name = key!.toUpperCase().replace(/[^A-Z0-9]/g, '_');
      assert.equal(env[name], value, `${name} (${key}=${value})`);
    }
    assert.equal(env.APICURIO_KAFKASQL_BOOTSTRAP_SERVERS, 'kafka:29092');
    const test = healthcheckText(service('schema-registry').healthcheck);
    assert.match(test, /\/apis\/ccompat\/v7\/subjects/);
    assert.match(test, new RegExp(`get ${env.QUARKUS_MANAGEMENT_PORT} /health/ready`));
  });

  it('runs ClickHouse with the credentials from .env, the database, and a raised nofile limit', () => {
    const s = service('clickhouse') as Service & { ulimits?: { nofile?: { soft: number; hard: number } } };
    const raw = rawEnvironment(s);
    assert.equal(raw.CLICKHOUSE_USER, rawEnvironment(service('sinks')).CLICKHOUSE_USER);
    assert.equal(raw.CLICKHOUSE_PASSWORD, rawEnvironment(service('sinks')).CLICKHOUSE_PASSWORD);
    assert.equal(raw.CLICKHOUSE_DB, rawEnvironment(service('sinks')).CLICKHOUSE_DATABASE);
    assert.ok((s.ulimits?.nofile?.soft ?? 0) >= 262144 && (s.ulimits?.nofile?.hard ?? 0) >= 262144);
    assert.match(healthcheckText(s.healthcheck), /SELECT 1/);
  });
});

describe('Dockerfile and .dockerignore', () => {
  const DOCKERFILE = read('Dockerfile');

  it('builds in stages and runs the CLI as a non-root user with a /healthz healthcheck', () => {
    assert.deepEqual(checkDockerfile(DOCKERFILE), []);
    const bad = 'FROM node:22\nWORKDIR /app\nCOPY . .\nRUN npm install\nCMD ["node","x.js"]\n';
    assert.deepEqual(checkDockerfile(bad), [
      '1 FROM stage(s); expected a build and a runtime stage',
      'stage FROM node:22: not a Node 20 image',
      'no build stage runs npm ci',
      'the runtime stage does not copy node_modules from a build stage',
      'the runtime stage runs as root',
      'no build stage runs npm run build',
      'the runtime stage does not copy dist/ from a build stage',
      'ENTRYPOINT does not run the build (dist/cli/main.js) with plain node',
      'no HEALTHCHECK on /healthz without curl',
    ]);
    assert.ok(
      checkDockerfile(DOCKERFILE.replace('USER node', 'USER root')).includes(
        'the runtime stage runs as root',
      ),
    );
  });

  it('compiles every source folder the CLI imports; the image has the build, the files read at run time and the demo switch', () => {
    const compiled = runtimeCopies(DOCKERFILE, 'build');
    const reached = sourceFoldersReachedFrom('cli/main.ts');
    for (const folder of ['core', 'producers', 'sinks', 'schemas', 'cli', 'sim', 'stack']) {
      assert.ok(reached.has(folder), `cli/main.ts no longer reaches ${folder}?`);
    }
    for (const folder of reached)
      assert.ok(compiled.has(folder), `the build stage lacks ${folder}/ (imported by the CLI)`);
    for (const file of ['tsconfig.json', 'tsconfig.build.json']) assert.ok(compiled.has(file), file);
    const copied = runtimeCopies(DOCKERFILE);
    // What the build reads from the package's root at run time (core/package-root.ts), never from dist/.
    for (const file of ['schemas/*.avsc', 'cli/dashboard/static', 'deploy/docker']) {
      assert.ok(copied.has(file), `the image lacks ${file}`);
    }
    for (const file of ['package.json', 'package-lock.json']) assert.ok(copied.has(file), file);
    assert.ok(!copied.has('test') && !copied.has('.'), 'only what runs goes into the image');
    for (const folder of reached) assert.ok(!copied.has(folder), `${folder}/ sources in the image`);
  });

  it('excludes dependencies, local state, history and secrets from the build context, but nothing the image needs', () => {
    for (const p of ['node_modules', '.stack', '.git', 'test-artifacts', '.env', '.env.local']) {
      assert.ok(dockerignored(DOCKERIGNORE, p), `${p} is not in .dockerignore`);
    }
    for (const p of [...runtimeCopies(DOCKERFILE), ...runtimeCopies(DOCKERFILE, 'build')]) {
      assert.ok(!dockerignored(DOCKERIGNORE, p), `${p} is copied but .dockerignore excludes it`);
    }
    assert.ok(!dockerignored(DOCKERIGNORE, 'deploy/docker/demo-switch.sh'));
    assert.ok(dockerignored(['deploy/grafana', '*.log'], 'deploy/grafana/dashboards/x.json'));
    assert.ok(!dockerignored(['.env.*', '!.env.example'], '.env.example'));
  });

  it('runs the producers entry point from a path that is in the image', () => {
    const { stages } = dockerfileStages(DOCKERFILE);
    const workdir = stages[stages.length - 1]!.lines.filter((l) => /^WORKDIR\b/i.test(l)).pop();
    assert.equal(workdir, 'WORKDIR /app');
    for (const [name, s] of Object.entries(COMPOSE.services)) {
      for (const arg of ([] as string[]).concat(s.entrypoint ?? [])) {
        if (!arg.startsWith('/app/')) continue;
        assert.ok(existsSync(path.join(ROOT, arg.slice('/app/'.length))), `${name}: ${arg} does not exist`);
      }
    }
  });
});
