/**
 * Checks of what smd-pull reports when ssh fails (used by the real-sshd tests).
 */
import type { Test } from 'tap';
import { join } from 'node:path';
import { isTransientFailure } from '@smd/endpoint';
import type { TestSshd } from './sshd.js';
import { deliver, messageCount, smd, writeConfig } from './sync-fixture.js';

export interface Seen { status: number | null; stdout: string }

/** A pull of a fresh endpoint through `server`: it must not synchronize anything. */
export async function pullFailing(t: Test, sshd: TestSshd, name: string, transport: 'ssh' | 'ssh2', server: string, env: NodeJS.ProcessEnv = sshd.env): Promise<Seen> {
  const ep = `${name}-${transport}`;
  writeConfig(sshd.home, ep, { SERVERNAME: server, CLIENTNAME: ep, MAILBOX: `Mail-${ep}`, TRANSPORT: transport });
  deliver(sshd.remoteHome, `Mail-${ep}`);
  const r = await smd('smd-pull', ['-s', ep], env);
  t.equal(messageCount(join(sshd.home, `Mail-${ep}`)), 0, `${ep}: nothing synchronized`);
  return { status: r.status, stdout: r.stdout };
}

/** The report: failed, ssh's own words shown, the TAGS of `cause`, retried by smd-loop only when transient. */
export function expectSshFailure(t: Test, seen: Seen, o: { what: RegExp; said: RegExp; cause: string; transient: boolean; via: string }): void {
  t.equal(seen.status, 1, 'failed');
  t.match(seen.stdout, new RegExp(`smd-server: ERROR: ${o.via}: ${o.what.source}`), 'what happened');
  t.match(seen.stdout, new RegExp(`smd-server: ERROR: ${o.via} said: .*${o.said.source}`), "ssh's own words");
  const tags = seen.stdout.split('\n').filter((l) => l.includes('TAGS: error::'));
  t.equal(tags.length, 1, `one error TAGS line: ${tags.join(' | ')}`);
  t.match(tags[0], o.transient
    ? /TAGS: error::context\(ssh\) probable-cause\(network\) human-intervention\(avoidable\) suggested-actions\(retry\)/
    : new RegExp(`TAGS: error::context\\(ssh\\) probable-cause\\(${o.cause}\\) human-intervention\\(necessary\\)`));
  t.equal(isTransientFailure(seen.stdout), o.transient, o.transient ? 'smd-loop retries it' : 'smd-loop does not retry it');
  if (!o.transient) t.match(seen.stdout, /smd-server: ERROR: what to do: /, 'the action to take');
  t.notMatch(seen.stdout, /peer closed the connection before the handshake/, 'not the consequence');
}
