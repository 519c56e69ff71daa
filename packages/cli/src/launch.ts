import { readFileSync } from 'node:fs';

/** A command of the suite: gets argv (without node and script), resolves to the exit code. */
export type CommandMain = (argv: string[]) => Promise<number>;

/** Version of the suite, from the root package.json (yargs would read the wrong one in a workspace). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Runs a command module `commands/<name>.js` and exits with its code. */
export async function launch(name: string): Promise<void> {
  let code: number;
  try {
    const mod = (await import(`./commands/${name}.js`)) as { main: CommandMain };
    code = await mod.main(process.argv.slice(2));
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`${name}: internal error: ${err?.stack ?? String(e)}\n`);
    code = 70;
  }
  // Let pending stdout writes reach a pipe before exiting.
  process.exitCode = code;
  if (process.stdout.writableLength > 0) process.stdout.once('drain', () => process.exit(code));
  else process.exit(code);
}
