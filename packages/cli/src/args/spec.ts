/**
 * What a command line may hold, declared once per command: the fast parser
 * (fast.ts), the yargs parser (full.ts) and the help both read it.
 * Every command also takes `-h`/`--help` and `--version`; specs do not list them.
 */

export interface OptionSpec<K extends string = string> {
  /** the long name, without dashes (`verbose`, `no-delete`) */
  readonly long: K;
  /** the one-letter name, without the dash */
  readonly short?: string;
  /** the name of its value in the help (`GLOB`): the option takes a (non-empty) value; a flag otherwise */
  readonly value?: string;
  /** a value option that may be given several times: the values accumulate (else the last one wins) */
  readonly repeatable?: boolean;
  readonly describe: string;
}

/**
 * `anywhere`: options and arguments in any order, `--` ends the options.
 * `leading`: upstream's smd-server/smd-client rule (protocol.md section 10): options are
 * recognised only while more than two arguments remain and the first of them starts
 * with `-`; the rest are arguments, whatever they look like.
 */
export type Grammar = 'anywhere' | 'leading';

export interface CommandSpec<K extends string = string> {
  readonly name: string;
  /** what follows the name in the usage line, e.g. `[options] [ENDPOINT]` */
  readonly synopsis: string;
  /** a paragraph (or a few) under the usage line */
  readonly description: string;
  readonly options: readonly OptionSpec<K>[];
  /** how many arguments besides the options, and what they are called in messages */
  readonly args: { readonly min: number; readonly max: number; readonly name: string };
  readonly grammar: Grammar;
  /** exit code of a usage error (upstream: 2 for smd-server and smd-client, 1 for the others) */
  readonly usageExit: number;
  /**
   * where a usage error goes: `stderr` (most), `stdout` (mddiff, like upstream),
   * `translator` (stdout, `ERROR` first: what a translator tells smd-client)
   */
  readonly errorsTo: 'stderr' | 'stdout' | 'translator';
  /** printed after the options in the help */
  readonly epilogue?: string;
}

/** `smd-pull [-v] ... [ENDPOINT]` */
export function usageLine(spec: CommandSpec): string {
  return spec.synopsis === '' ? spec.name : `${spec.name} ${spec.synopsis}`;
}

/** Keeps the option names of a spec as literal types (`args.flag('verbose')` is checked). */
export function defineCommand<const K extends string>(spec: CommandSpec<K>): CommandSpec<K> {
  return spec;
}

/** The options of a command line, by long name, and its other arguments. */
export class ParsedArgs<K extends string = string> {
  constructor(
    private readonly flags: ReadonlySet<string>,
    private readonly vals: ReadonlyMap<string, readonly string[]>,
    readonly args: readonly string[],
  ) {}

  /** Was the flag given? */
  flag(k: K): boolean {
    return this.flags.has(k);
  }

  /** The value of an option (the last one given), or undefined. */
  value(k: K): string | undefined {
    const v = this.vals.get(k);
    return v === undefined ? undefined : v[v.length - 1];
  }

  /** Every value of a repeatable option, in order. */
  values(k: K): readonly string[] {
    return this.vals.get(k) ?? [];
  }
}

/** Builds ParsedArgs; used by both parsers. */
export class ArgsBuilder {
  readonly flags = new Set<string>();
  readonly vals = new Map<string, string[]>();
  readonly args: string[] = [];

  add(o: OptionSpec, value?: string): void {
    if (o.value === undefined) { this.flags.add(o.long); return; }
    const v = this.vals.get(o.long);
    if (v === undefined || o.repeatable !== true) this.vals.set(o.long, [value as string]);
    else v.push(value as string);
  }

  build<K extends string>(): ParsedArgs<K> {
    return new ParsedArgs<K>(this.flags, this.vals, this.args);
  }
}

/** `-v` and `--verbose` → the option; built once per spec. */
export function optionTable(spec: CommandSpec): ReadonlyMap<string, OptionSpec> {
  let t = tables.get(spec);
  if (t === undefined) {
    const m = new Map<string, OptionSpec>();
    for (const o of spec.options) {
      m.set(`--${o.long}`, o);
      if (o.short !== undefined) m.set(`-${o.short}`, o);
    }
    tables.set(spec, m);
    t = m;
  }
  return t;
}
const tables = new WeakMap<CommandSpec, ReadonlyMap<string, OptionSpec>>();
