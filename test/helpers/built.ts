/**
 * The build (`npm run build`: tsconfig.build.json into dist/), which the tests start as processes, as
 * the Docker image runs it: the daemons under test are what a deployment runs, without tsx in them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../core/package-root.ts';

const DIST = path.join(PACKAGE_ROOT, 'dist');

/** The folders tsconfig.build.json compiles. */
function sourceDirs(): string[] {
  const config = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'tsconfig.build.json'), 'utf8')) as {
    include: string[];
  };
  return config.include;
}

/** Every .ts source the build compiles whose .js in dist/ is missing or older than it. */
function staleSources(): string[] {
  const stale: string[] = [];
  for (const dir of sourceDirs()) {
    const root = path.join(PACKAGE_ROOT, dir);
    if (!fs.existsSync(root)) continue;
    for (const rel of fs.readdirSync(root, { recursive: true }) as string[]) {
      if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue;
      const source = path.join(dir, rel);
      const built = path.join(DIST, source.replace(/\.ts$/, '.js'));
      const builtAt = fs.statSync(built, { throwIfNoEntry: false })?.mtimeMs;
      if (builtAt === undefined || builtAt < fs.statSync(path.join(PACKAGE_ROOT, source)).mtimeMs) {
        stale.push(source);
      }
    }
  }
  return stale;
}

let checked = false;

/**
 * The compiled module of `source` (a path from the package's root, e.g. 'cli/main.ts'). Throws when the
 * build is missing or older than a source, so that a test never runs yesterday's code without saying so.
 */
export function builtModule(source: string): string {
  if (!checked) {
    const stale = staleSources();
    if (stale.length) {
      const shown = stale.slice(0, 5).join(', ') + (stale.length > 5 ? `, … (${stale.length})` : '');
      throw new Error(`dist/ is missing or older than ${shown}: run \`npm run build\` (npm test does)`);
    }
    checked = true;
  }
  return path.join(DIST, source.replace(/\.ts$/, '.js'));
}

/** Runs `npm run build`'s compiler; rejects with its output when it fails. */
export function build(): Promise<void> {
  const tsc = path.join(PACKAGE_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: PACKAGE_ROOT });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`npm run build failed (exit ${code}):\n${out}`)),
    );
  });
}
