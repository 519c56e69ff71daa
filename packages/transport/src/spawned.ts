import { spawn } from 'node:child_process';
import { TransportError } from './errors.js';
import type { RemoteExit, RemoteProcess } from './types.js';

/**
 * Starts `file args` with three pipes; resolves once the process exists.
 * `failureCode` is the exit code meaning "the transport failed" (255 for ssh).
 */
export function spawnRemote(
  file: string, args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; failureCode?: number; description: string; what: string },
): Promise<RemoteProcess> {
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      reject(new TransportError('spawn', `cannot start ${opts.what} (${file}): ${(e as Error).message}`, { cause: e }));
      return;
    }
    const c = child;
    // A program that exits early makes our writes fail with EPIPE: that is
    // reported through `exit`, it must not crash the process.
    c.stdin.on('error', () => {});
    let started = false;
    const exit = new Promise<RemoteExit>((res) => {
      c.once('exit', (code, signal) => {
        res({ code, signal, connectionFailed: opts.failureCode !== undefined && code === opts.failureCode });
      });
    });
    c.once('error', (e: NodeJS.ErrnoException) => {
      if (started) return;
      const hint = e.code === 'ENOENT' ? (file.includes('/') ? ': no such file' : ': not found on PATH') : '';
      reject(new TransportError('spawn', `cannot start ${opts.what} (${file})${hint}: ${e.message}`, { cause: e }));
    });
    c.once('spawn', () => {
      started = true;
      c.on('error', () => {}); // e.g. kill() after exit
      let killed = false;
      resolve({
        stdout: c.stdout,
        stdin: c.stdin,
        stderr: c.stderr,
        exit,
        description: opts.description,
        kill() {
          if (killed || c.exitCode !== null || c.signalCode !== null) return;
          killed = true;
          c.kill('SIGTERM');
        },
      });
    });
  });
}
