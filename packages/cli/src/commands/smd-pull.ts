import { runSync } from '../sync/run.js';

/** smd-pull [-v] [-s] [-t] [-d] [-n] [ENDPOINT]: brings the server's changes to this host. */
export async function main(argv: string[]): Promise<number> {
  return runSync('pull', argv);
}
