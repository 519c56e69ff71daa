/**
 * The db-file patch of upstream's dialect (`protocol 1.3`): xdelta3's VCDIFF,
 * made and applied by the `xdelta3` program itself (Debian package
 * `xdelta3`), as upstream does: the field's own tool, not an imitation.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { PatchError } from './patch.js';

/** Longest an xdelta3 run may take before it is killed. */
const XDELTA_TIMEOUT_MS = 120_000;

let available: boolean | null = null;

/** Why upstream's dialect cannot be spoken here, or null when `xdelta3` runs. */
export function xdeltaUnavailable(): string | null {
  if (available === null) {
    const r = spawnSync('xdelta3', ['-V'], { stdio: 'ignore', timeout: 10_000 });
    available = r.error === undefined && r.status === 0;
  }
  return available ? null : 'its db-file patches need the xdelta3 program, which is not installed here: install it (Debian/Ubuntu: apt install xdelta3) and run again';
}

function run(args: string[], what: string): void {
  const r = spawnSync('xdelta3', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: XDELTA_TIMEOUT_MS, maxBuffer: 1 << 20 });
  if (r.error !== undefined) throw new PatchError(`${what}: cannot run xdelta3: ${r.error.message}`);
  if (r.status !== 0) {
    const err = (r.stderr?.toString('utf8') ?? '').trim().split('\n').slice(-3).join('; ');
    throw new PatchError(`${what}: xdelta3 ${r.signal !== null ? `was killed (${r.signal})` : `failed (exit ${r.status})`}${err ? `: ${err}` : ''}`);
  }
}

/** `xdelta3 -e -s OLD NEW PATCH`: writes the VCDIFF turning `oldFile` into `newFile` to `patchFile`. */
export function createXdeltaPatch(oldFile: string, newFile: string, patchFile: string): void {
  run(['-e', '-f', '-s', oldFile, newFile, patchFile], 'Making the db-file patch');
}

/**
 * `xdelta3 -d -s OLD PATCH OUT`, with the output bounded by `maxOutput`
 * bytes (a patch that inflates beyond it is refused: its output file is
 * limited by RLIMIT_FSIZE through the shell's ulimit).
 */
export function applyXdeltaPatch(oldFile: string, patchFile: string, outFile: string, maxOutput: number): void {
  const blocks = Math.ceil(maxOutput / 512) + 1;
  const r = spawnSync('sh', ['-c', `ulimit -f ${blocks} && exec xdelta3 -d -f -s "$1" "$2" "$3"`, 'sh', oldFile, patchFile, outFile],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: XDELTA_TIMEOUT_MS, maxBuffer: 1 << 20 });
  if (r.error !== undefined) throw new PatchError(`Applying the db-file patch: cannot run xdelta3: ${r.error.message}`);
  if (r.status !== 0) {
    if (r.signal === 'SIGXFSZ') {
      throw new PatchError(`Applying the db-file patch: its result would exceed ${maxOutput} bytes; refused`);
    }
    const err = (r.stderr?.toString('utf8') ?? '').trim().split('\n').slice(-3).join('; ');
    throw new PatchError(`Applying the db-file patch: xdelta3 ${r.signal !== null ? `was killed (${r.signal})` : `failed (exit ${r.status})`}${err ? `: ${err}` : ''}`);
  }
  if (statSync(outFile).size > maxOutput) throw new PatchError(`Applying the db-file patch: its result exceeds ${maxOutput} bytes; refused`);
}
