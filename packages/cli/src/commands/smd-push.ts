import { runSync } from '../sync/run.js';

/** smd-push [-v] [-s] [-t] [-d] [-n] [ENDPOINT]: brings this host's changes to the server. */
export async function main(argv: string[]): Promise<number> {
  return runSync('push', argv);
}
