import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { StackConfig } from './config.ts';
import { onPath, type Requirement } from './prerequisites.ts';

// Pinned so a fresh ~/.m2 resolves the same plugin everywhere; Maven 3.8's built-in default is years older.
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';

/** Only needed while a service's jars are not fetched yet; Debian's maven package brings a Java 17 too. */
export const MAVEN: Requirement = {
  what: 'mvn (fetches the Kafka and Apicurio jars from Maven Central)',
  apt: ['maven'],
  present: () => onPath('mvn') !== undefined,
};

/**
 * Runs one Maven goal in batch mode. Its output goes to a log file instead of the terminal (Maven is
 * chatty even with -q); on failure the tail is put into the error so the cause is visible.
 */
async function runMaven(cfg: StackConfig, args: string[], logFile: string, cwd: string): Promise<void> {
  const full = ['-B', '-q', '-Dstyle.color=never', ...args];
  if (cfg.mavenRepoLocal) full.unshift(`-Dmaven.repo.local=${cfg.mavenRepoLocal}`);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.openSync(logFile, 'w');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('mvn', full, { cwd, stdio: ['ignore', out, out] });
      child.once('error', (err) =>
        reject(
          new Error(
            (err as NodeJS.ErrnoException).code === 'ENOENT'
              ? 'mvn not found on PATH: install Maven (apt-get install -y maven) to fetch the stack jars'
              : `could not run mvn: ${err.message}`,
          ),
        ),
      );
      child.once('exit', resolve);
    });
    if (code !== 0) {
      const text = fs.readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
      throw new Error(`mvn ${args[0]} failed (exit ${code}); full output in ${logFile}:\n${text}`);
    }
  } finally {
    fs.closeSync(out);
  }
}

/** Copies a pom's runtime classpath (every jar) into `outDir`; `props` override the pom's properties. */
export function copyDependencies(
  cfg: StackConfig,
  pomDir: string,
  outDir: string,
  logFile: string,
  props: Record<string, string> = {},
) {
  return runMaven(
    cfg,
    [
      `${DEPENDENCY_PLUGIN}:copy-dependencies`,
      '-DincludeScope=runtime',
      `-DoutputDirectory=${outDir}`,
      ...Object.entries(props).map(([k, v]) => `-D${k}=${v}`),
    ],
    logFile,
    pomDir,
  );
}

/** Copies one artifact (`group:artifact:version:type:classifier`) into `outDir`; needs no pom. */
export function copyArtifact(cfg: StackConfig, artifact: string, outDir: string, logFile: string) {
  return runMaven(
    cfg,
    [`${DEPENDENCY_PLUGIN}:copy`, `-Dartifact=${artifact}`, `-DoutputDirectory=${outDir}`],
    logFile,
    outDir,
  );
}
