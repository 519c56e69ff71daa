/**
 * A fake ssh for the "busy mail program" tests: it runs the remote command in
 * the remote HOME like sync-fixture's, but the client-to-server stream goes
 * through a filter that, just before forwarding a chosen request line, renames
 * a file on the remote side, as a mail program reading or flagging that
 * message between the server's scan and the client's request would.
 *
 * BUSY_ON=<exact line>  BUSY_FROM=<path>  BUSY_TO=<path>  (paths absolute)
 * BUSY_STALL=1: after the handshake, forward nothing more in either direction
 * (a peer that stays silent forever).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FILTER = `
import { renameSync, appendFileSync } from 'node:fs';
const on = process.env.BUSY_ON ?? '';
const log = process.env.BUSY_LOG;
let buf = Buffer.alloc(0);
let lines = 0;
process.stdin.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
    const line = buf.subarray(0, nl).toString('latin1');
    buf = buf.subarray(nl + 1);
    lines++;
    if (process.env.BUSY_STALL === '1' && lines > 2) continue;
    if (on !== '' && line === on) {
      renameSync(process.env.BUSY_FROM, process.env.BUSY_TO);
      if (log) appendFileSync(log, 'renamed\\n');
    }
    process.stdout.write(Buffer.from(line + '\\n', 'latin1'));
  }
});
process.stdin.on('end', () => process.stdout.end());
`;

/** Writes `ssh` (and its filter) into `dir`; the remote command runs in `remoteHome`. */
export function writeBusySsh(dir: string, remoteHome: string): string {
  writeFileSync(join(dir, 'busy-filter.mjs'), FILTER);
  const ssh = join(dir, 'ssh');
  writeFileSync(ssh, `#!/bin/sh
shift
cd "${remoteHome}" || exit 255
node "${join(dir, 'busy-filter.mjs')}" | HOME="${remoteHome}" sh -c "$*"
`);
  chmodSync(ssh, 0o755);
  return ssh;
}
