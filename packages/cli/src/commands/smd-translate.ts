/**
 * smd-translate -m MODE -d LR|RL ENDPOINT (upstream 6.9)
 *
 * A line filter, stdin → stdout, one answer flushed per line, used as TRANSLATOR_LR /
 * TRANSLATOR_RL. The roots come from ~/.smd/config.ENDPOINT (MAILBOX_LOCAL and
 * MAILBOX_REMOTE, falling back to MAILBOX), read with the endpoint package's config parser
 * (upstream scanned KEY=VALUE naively). Several roots pair up by position.
 * On any error it prints `ERROR` and then the message on stdout — what a translator says
 * to smd-client — and exits 1.
 */
import { createInterface } from 'node:readline';
import { type ByteString, decodeArgument, fromUtf8 } from '@smd/maildir';
import {
  SmdHome, readConfigVariables, splitList, stripTrailingSlash, translateName, TranslateError,
  TRANSLATE_MODES, type TranslateMode, type TranslateDirection, validateEndpointName,
} from '@smd/endpoint';
import { parseCommandLine } from '../args/index.js';
import { SMD_TRANSLATE } from '../args/specs.js';

function fail(message: string): number {
  process.stdout.write(`ERROR\n${message}\n`);
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  const args = await parseCommandLine(SMD_TRANSLATE, argv);
  if (typeof args === 'number') return args;
  const mode = args.value('mode') ?? 'default';
  const dir = args.value('direction') ?? null;
  const endpoint = args.args[0];
  if (!(TRANSLATE_MODES as readonly string[]).includes(mode)) return fail(`unknown mode "${mode}": use one of ${TRANSLATE_MODES.join(', ')}`);
  if (dir !== 'LR' && dir !== 'RL') return fail(`the direction (-d) must be LR or RL${dir === null ? '' : `, not "${dir}"`}`);
  const badName = validateEndpointName(endpoint);
  if (badName !== null) return fail(badName);

  let locals: ByteString[] = [];
  let remotes: ByteString[] = [];
  if (mode !== 'cat') {
    let vars: Map<string, string>;
    try {
      const home = SmdHome.fromEnv();
      vars = readConfigVariables(home.config(endpoint));
    } catch (e) {
      return fail((e as Error).message);
    }
    const pick = (k: string): string[] => {
      const v = (vars.get(k) ?? '').trim() !== '' ? vars.get(k)! : vars.get('MAILBOX') ?? '';
      return splitList(stripTrailingSlash(v)).map((r) => stripTrailingSlash(r));
    };
    locals = pick('MAILBOX_LOCAL').map(fromUtf8);
    remotes = pick('MAILBOX_REMOTE').map(fromUtf8);
    if (locals.length === 0 || remotes.length === 0) return fail(`no MAILBOX_LOCAL/MAILBOX_REMOTE (nor MAILBOX) in the configuration of endpoint ${endpoint}`);
    if (locals.length !== remotes.length) return fail(`MAILBOX_LOCAL has ${locals.length} roots and MAILBOX_REMOTE ${remotes.length}: they pair up one by one`);
  }

  const translateOne = (name: ByteString): ByteString => {
    if (mode === 'cat') return name;
    const from = dir === 'LR' ? locals : remotes;
    // Names may come %-encoded (as in the config) or decoded: accept both forms of a root.
    for (let k = 0; k < from.length; k++) {
      for (const decode of [true, false]) {
        const l = decode ? decodeArgument(locals[k]) : locals[k];
        const r = decode ? decodeArgument(remotes[k]) : remotes[k];
        const root = dir === 'LR' ? l : r;
        if (name === root || name.startsWith(`${root}/`)) return translateName(mode as TranslateMode, dir as TranslateDirection, name, l, r);
      }
    }
    throw new TranslateError(`"${name}" is not under ${from.map((r) => `"${r}"`).join(' or ')}`);
  };

  process.stdin.setEncoding('latin1');
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  try {
    for await (const line of rl) {
      let out: ByteString;
      try {
        out = translateOne(line);
      } catch (e) {
        if (e instanceof TranslateError) return fail(e.message);
        throw e;
      }
      process.stdout.write(Buffer.from(`${out}\n`, 'latin1'));
    }
  } finally {
    rl.close();
  }
  return 0;
}
