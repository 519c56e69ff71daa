import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A command of the suite: gets argv (without node and script), resolves to the exit code. */
export type CommandMain = (argv: string[]) => Promise<number>;

/**
 * The version, set by scripts/bundle.mjs (esbuild `define`) in the bundles of
 * the installed package; undefined in the compiled workspace (packages/*\/dist).
 */
declare const __SMD_BUNDLED_VERSION__: string | undefined;
const BUNDLED = typeof __SMD_BUNDLED_VERSION__ === 'string';

/**
 * The root of this installation: bundles live in `<root>/lib/`, this module
 * in `<root>/packages/cli/{src,dist}/` otherwise. (An npm global install is a
 * copy of the package; PREFIX/bin only holds symlinks to `<root>/bin/`.)
 */
export const PACKAGE_ROOT: string = fileURLToPath(new URL(BUNDLED ? '../' : '../../../', import.meta.url));

/** Our own bin directory: the local programs (smd-client, smd-server, mddiff, ...) are started from it. */
export const OWN_BIN: string = join(PACKAGE_ROOT, 'bin');

/** Version of the suite, from the root package.json (yargs would read the wrong one in a workspace). */
export const VERSION: string = BUNDLED
  ? (__SMD_BUNDLED_VERSION__ as string)
  : (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Compiled workspace: runs the command module `commands/<name>.js` (bin/<name> calls this). */
export async function launch(name: string): Promise<void> {
  // Not a template literal: a bundler would pull every command into every bundle.
  const module = './commands/' + name + '.js';
  let main: CommandMain;
  try {
    main = ((await import(module)) as { main: CommandMain }).main;
  } catch (e) {
    return exitWith(internalError(name, e));
  }
  return runCommand(name, main);
}

/** Runs a command's main and exits with its code (the bundles call this directly). */
export async function runCommand(name: string, main: CommandMain): Promise<void> {
  let code: number;
  try {
    code = await main(process.argv.slice(2));
  } catch (e) {
    code = internalError(name, e);
  }
  exitWith(code);
}

function internalError(name: string, e: unknown): number {
  const err = e as Error;
  process.stderr.write(`${name}: internal error: ${err?.stack ?? String(e)}\n`);
  return 70;
}

function exitWith(code: number): void {
  // Let pending stdout writes reach a pipe before exiting.
  process.exitCode = code;
  if (process.stdout.writableLength > 0) process.stdout.once('drain', () => process.exit(code));
  else process.exit(code);
}
