/**
 * The yargs parser, built from a command's spec: the help, `--version`, the
 * error messages and every spelling the fast parser leaves to it (`--opt=value`,
 * `-vd`, `--`). Loaded only when the fast parser gave up.
 */
import yargs, { type Argv } from 'yargs';
import { VERSION } from '../launch.js';
import { splitLeading } from './fast.js';
import { ArgsBuilder, optionTable, usageLine, type CommandSpec, type ParsedArgs } from './spec.js';

export type Outcome<K extends string> =
  | { kind: 'ok'; args: ParsedArgs<K> }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'error'; message: string };

const WIDTH = 80;

function build(spec: CommandSpec, argv: string[]): Argv {
  let y = yargs(argv)
    .scriptName(spec.name)
    .usage(`Usage: ${usageLine(spec)}\n\n${spec.description}`)
    .parserConfiguration({
      // `--no-delete` is an option of its own, not the negation of `--delete`
      'boolean-negation': false,
      'camel-case-expansion': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'dot-notation': false,
      'greedy-arrays': false,
      'duplicate-arguments-array': true,
      'strip-aliased': true,
    })
    .wrap(WIDTH)
    // our texts are English: so are yargs' words around them, whatever LANG says
    .locale('en')
    .exitProcess(false)
    .strictOptions();
  // no `[boolean]` / `[string]` after each option (yargs 18; @types/yargs is 17)
  y = (y as Argv & { usageConfiguration(c: Record<string, boolean>): Argv }).usageConfiguration({ 'hide-types': true });
  for (const o of spec.options) {
    y = y.option(o.long, {
      alias: o.short,
      type: o.value === undefined ? 'boolean' : 'string',
      describe: o.value === undefined ? o.describe : `${o.value}: ${o.describe}`,
    });
  }
  y = y.help('help', 'print this help and exit').alias('help', 'h')
    .version('version', 'print the version and exit', VERSION);
  if (spec.epilogue !== undefined) y = y.epilogue(spec.epilogue);
  return y;
}

/** The help of a command, as `--help` prints it. */
export async function helpText(spec: CommandSpec): Promise<string> {
  return `${await build(spec, []).getHelp()}\n`;
}

/**
 * `-x VALUE` and `--long VALUE` become `--long=VALUE`, so that yargs takes the
 * value as it is (the fast parser does: `--exclude -x` excludes `-x`). Stops at `--`.
 */
function joinValues(spec: CommandSpec, words: readonly string[]): string[] {
  const table = optionTable(spec);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const x = words[i];
    if (x === '--') { out.push(...words.slice(i)); break; }
    const o = table.get(x);
    if (o?.value !== undefined && i + 1 < words.length) out.push(`--${o.long}=${words[++i]}`);
    else out.push(x);
  }
  return out;
}

/** yargs says `Unknown argument: x`; the user wrote `-x`. */
function unknownOptions(message: string): string {
  const m = /^Unknown arguments?: (.*)$/.exec(message);
  if (m === null) return message;
  const names = m[1].split(', ').map((n) => (n.length === 1 ? `-${n}` : `--${n}`));
  return `unknown option${names.length > 1 ? 's' : ''} ${names.join(', ')}`;
}

export async function parseFull<K extends string>(spec: CommandSpec<K>, argv: readonly string[]): Promise<Outcome<K>> {
  let words: string[];
  if (spec.grammar === 'leading') {
    const s = splitLeading(spec, argv);
    words = [...joinValues(spec, s.options), '--', ...s.args];
  } else {
    words = joinValues(spec, argv);
  }
  const y = build(spec, words);
  let failure: string | null = null;
  y.fail((msg, err) => { failure ??= msg ?? err?.message ?? 'bad arguments'; });
  // yargs prints the help or the version itself (on stdout)
  const a = (await y.parseAsync()) as Record<string, unknown>;
  if (a.help === true) return { kind: 'help' };
  if (a.version === true) return { kind: 'version' };
  if (failure !== null) return { kind: 'error', message: unknownOptions(failure) };

  const b = new ArgsBuilder();
  for (const o of spec.options) {
    const v = a[o.long];
    if (v === undefined) continue;
    if (o.value === undefined) {
      // a flag given twice is [true, true]; `--verbose=false` is false
      if ((Array.isArray(v) ? v[v.length - 1] : v) === true) b.add(o);
      continue;
    }
    for (const s of (Array.isArray(v) ? v : [v]).map(String)) {
      if (s === '') return { kind: 'error', message: `option --${o.long} needs a value (${o.value})` };
      b.add(o, s);
    }
  }
  b.args.push(...(a._ as unknown[]).map(String));
  const { min, max, name } = spec.args;
  if (b.args.length < min) {
    return { kind: 'error', message: b.args.length === 0 ? `missing ${name}` : `missing arguments: ${name} expected, got ${b.args.map((x) => JSON.stringify(x)).join(' ')}` };
  }
  if (b.args.length > max) {
    const extra = b.args.slice(max).map((x) => JSON.stringify(x)).join(' ');
    return { kind: 'error', message: max === 0 ? `unexpected argument${b.args.length > 1 ? 's' : ''} ${extra}: ${spec.name} takes none` : `unexpected argument${b.args.length - max > 1 ? 's' : ''} ${extra}: only ${name} may be given` };
  }
  return { kind: 'ok', args: b.build<K>() };
}
