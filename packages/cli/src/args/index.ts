/**
 * The argument parser of every command: one spec per command (specs.ts), read
 * by a fast hand parser for the valid common case and by yargs for the rest.
 * Usage errors print the message and the usage line, and exit with the command's code.
 */
import { parseFast } from './fast.js';
import { usageLine, type CommandSpec, type ParsedArgs } from './spec.js';

export { defineCommand, ParsedArgs, type CommandSpec, type OptionSpec, type Grammar } from './spec.js';
export { parseFast } from './fast.js';
export { COMMAND_SPECS, type CommandName } from './specs.js';

/**
 * The parsed command line, or the exit code when the command has nothing more
 * to do (help or version printed: 0; usage error reported: `spec.usageExit`).
 */
export async function parseCommandLine<K extends string>(spec: CommandSpec<K>, argv: readonly string[]): Promise<ParsedArgs<K> | number> {
  const fast = parseFast(spec, argv);
  if (fast !== null) return fast;
  const { parseFull } = await import('./full.js');
  const r = await parseFull(spec, argv);
  if (r.kind === 'ok') return r.args;
  if (r.kind === 'help' || r.kind === 'version') return 0;
  return reportUsageError(spec, r.message);
}

/** The message of a usage error, the usage line and where the help is. */
export function usageErrorText(spec: CommandSpec, message: string): string {
  const text = `${spec.name}: ${message}\nUsage: ${usageLine(spec)}\nRun "${spec.name} --help" for the options.\n`;
  return spec.errorsTo === 'translator' ? `ERROR\n${text}` : text;
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  return new Promise((resolve) => { stream.write(text, () => resolve()); });
}

/** Writes a usage error (also one the command finds itself, e.g. a bad value); resolves to the exit code. */
export async function reportUsageError(spec: CommandSpec, message: string): Promise<number> {
  await write(spec.errorsTo === 'stderr' ? process.stderr : process.stdout, usageErrorText(spec, message));
  return spec.usageExit;
}
