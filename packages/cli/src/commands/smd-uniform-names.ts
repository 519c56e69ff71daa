import { runUniformNames } from '../sync/uniform.js';

/**
 * smd-uniform-names [-v] [-s] [ENDPOINT] (upstream 6.10): before the first
 * sync, writes ~/smd-rename.sh renaming local messages to the names the same
 * messages have on the server.
 */
export async function main(argv: string[]): Promise<number> {
  return runUniformNames(argv);
}
