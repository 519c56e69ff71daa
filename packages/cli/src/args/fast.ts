/**
 * The fast parser: the plain command lines that smd-pull, smd-push, smd-loop
 * and scripts run, parsed without loading yargs (importing it costs ~140 ms
 * of start-up, and a run starts three Node processes). It accepts only exact
 * option words (`-v`, `--exclude GLOB`) and a valid number of arguments;
 * anything else (help, version, `--opt=value`, `-vd`, an error) returns null
 * and goes to the yargs parser, which reads the same spec.
 */
import { ArgsBuilder, optionTable, type CommandSpec, type ParsedArgs } from './spec.js';

export function parseFast<K extends string>(spec: CommandSpec<K>, argv: readonly string[]): ParsedArgs<K> | null {
  const table = optionTable(spec);
  const b = new ArgsBuilder();
  let i = 0;
  if (spec.grammar === 'leading') {
    while (argv.length - i > 2 && argv[i].startsWith('-')) {
      const o = table.get(argv[i++]);
      if (o === undefined) return null;
      if (o.value === undefined) { b.add(o); continue; }
      const v = argv[i++];
      if (v === undefined || v === '') return null;
      b.add(o, v);
    }
    b.args.push(...argv.slice(i));
  } else {
    for (; i < argv.length; i++) {
      const x = argv[i];
      if (x === '--') { b.args.push(...argv.slice(i + 1)); break; }
      const o = table.get(x);
      if (o !== undefined) {
        if (o.value === undefined) { b.add(o); continue; }
        const v = argv[++i];
        if (v === undefined || v === '') return null;
        b.add(o, v);
        continue;
      }
      if (x.startsWith('-') && x !== '-') return null;
      b.args.push(x);
    }
  }
  if (b.args.length < spec.args.min || b.args.length > spec.args.max) return null;
  return b.build<K>();
}

/**
 * The leading-grammar split (see Grammar): the words read as options, and the
 * arguments. Every word starting with `-` in the option part counts, known or
 * not (the parser judges it), with the next word when it names an option that
 * takes a value. A sole `-h`, `--help` or `--version` is an option too.
 */
export function splitLeading(spec: CommandSpec, argv: readonly string[]): { options: string[]; args: string[] } {
  if (argv.length === 1 && ['-h', '--help', '--version'].includes(argv[0])) return { options: [...argv], args: [] };
  const takesValue = (x: string): boolean => {
    const o = optionTable(spec).get(x);
    if (o !== undefined) return o.value !== undefined;
    // a cluster of short options (`-vt CMD`): its last letter decides
    if (/^-[^-]{2,}$/.test(x)) return optionTable(spec).get(`-${x[x.length - 1]}`)?.value !== undefined;
    return false;
  };
  let i = 0;
  while (argv.length - i > 2 && argv[i].startsWith('-')) {
    if (takesValue(argv[i++]) && i < argv.length) i++;
  }
  return { options: argv.slice(0, i), args: argv.slice(i) };
}
