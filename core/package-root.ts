import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package's root directory: the nearest one above this module that holds a package.json. It is the
 * same whether the sources run through tsx (core/) or the build runs (dist/core/, which has no
 * package.json of its own), so the files read at run time (the schemas' .avsc files, the dashboard's
 * static files) are read where they are kept and the build never copies them.
 */
export const PACKAGE_ROOT: string = (() => {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json in ${start} or above it`);
  }
})();
