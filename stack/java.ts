import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { onPath, type Requirement } from './prerequisites.ts';

/** Reads the major version from a JDK's `release` file, falling back to asking the binary. */
function majorVersion(javaBin: string): number | undefined {
  try {
    const home = path.resolve(path.dirname(fs.realpathSync(javaBin)), '..');
    const release = fs.readFileSync(path.join(home, 'release'), 'utf8');
    const m = /^JAVA_VERSION="(\d+)/m.exec(release);
    if (m?.[1]) return Number(m[1]);
  } catch {
    // no release file: ask the binary below
  }
  try {
    const out = execFileSync(javaBin, ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return parseVersionOutput(out);
  } catch (err) {
    // `java -version` prints to stderr; execFileSync only hands it back on the error object
    const stderr = (err as { stderr?: string }).stderr;
    return stderr ? parseVersionOutput(stderr) : undefined;
  }
}

function parseVersionOutput(out: string): number | undefined {
  const m = /version "(\d+)/.exec(out);
  return m?.[1] ? Number(m[1]) : undefined;
}

function defaultCandidates(): string[] {
  const candidates: string[] = [];
  if (process.env.JAVA_HOME) candidates.push(path.join(process.env.JAVA_HOME, 'bin', 'java'));
  const fromPath = onPath('java');
  if (fromPath) candidates.push(fromPath);
  try {
    for (const entry of fs.readdirSync('/usr/lib/jvm').sort().reverse()) {
      candidates.push(path.join('/usr/lib/jvm', entry, 'bin', 'java'));
    }
  } catch {
    // no /usr/lib/jvm on this machine
  }
  return candidates;
}

/**
 * Finds a `java` of at least `minMajor`: only the JDK home named by `overrideEnv` when that is set, else
 * JAVA_HOME, the one on PATH, then every JDK under /usr/lib/jvm (the polyglot machines carry a Temurin 25
 * there beside Debian's 17).
 */
export function findJava(minMajor: number, overrideEnv?: string): { bin: string; major: number } {
  const overrideHome = overrideEnv ? process.env[overrideEnv] : undefined;
  // An explicit choice is taken or refused, never silently replaced by another JDK.
  const candidates = overrideHome ? [path.join(overrideHome, 'bin', 'java')] : defaultCandidates();
  const seen: string[] = [];
  for (const bin of candidates) {
    if (!fs.existsSync(bin)) continue;
    const major = majorVersion(bin);
    seen.push(`${bin} (${major ?? '?'})`);
    if (major !== undefined && major >= minMajor) return { bin, major };
  }
  throw new Error(
    `no Java ${minMajor}+ found (looked at: ${seen.join(', ') || 'nothing'}); ` +
      `install one and point ${overrideEnv ?? 'JAVA_HOME'} at its home`,
  );
}

/** Whether any JDK or JRE of at least `minMajor` is found where findJava looks without an override. */
export function hasJava(minMajor: number): boolean {
  return defaultCandidates().some((bin) => fs.existsSync(bin) && (majorVersion(bin) ?? 0) >= minMajor);
}

/**
 * Debian 12's only Java is 17: enough for Kafka and for Apicurio 2.6 (registry.ts picks 3.3 only when a
 * Java 21+ is already there). An explicit STACK_*_JAVA_HOME is the person's choice: nothing is installed
 * for it, and findJava reports it if it is wrong.
 */
export function javaRequirement(overrideEnv: string, env: NodeJS.ProcessEnv = process.env): Requirement {
  return {
    what: 'Java 17+ (runs Kafka and the registry)',
    apt: ['openjdk-17-jre-headless'],
    present: () => Boolean(env[overrideEnv]) || hasJava(17),
  };
}
