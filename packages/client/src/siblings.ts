/**
 * The local files of a message under other flags: when a name the server
 * names is missing here, the message may just have been renamed here (its
 * flags changed) since the last sync. A folder's cur/ and new/ are listed
 * once per run, on first need, and indexed by the names' unique part; every
 * candidate is observed again before the policy sees it, so a listing that
 * has aged during the run can only miss a file, never invent one.
 */
import type { ByteString } from '@smd/maildir';
import type { Sibling } from './policy.js';
import { splitMessageName } from './flags.js';
import type { LocalMailbox } from './local.js';

export class SiblingFinder {
  /** remote dir → unique part → file names */
  private readonly listings = new Map<ByteString, Map<ByteString, ByteString[]>>();

  constructor(private readonly local: LocalMailbox) {}

  /** The other local files of the message `name` (a remote name) in its folder, with their state. */
  async of(name: ByteString): Promise<Sibling[]> {
    const n = splitMessageName(name);
    if (n === null) return [];
    const out: Sibling[] = [];
    for (const sub of ['cur', 'new']) {
      const remoteDir = `${n.folder}/${sub}`;
      for (const file of (await this.listing(remoteDir)).get(n.unique) ?? []) {
        const remote = `${remoteDir}/${file}`;
        if (remote === name) continue;
        const state = await this.local.observe(remote);
        if (state.kind !== 'absent') out.push({ name: remote, state });
      }
    }
    return out;
  }

  private async listing(dir: ByteString): Promise<Map<ByteString, ByteString[]>> {
    let m = this.listings.get(dir);
    if (m !== undefined) return m;
    m = new Map();
    for (const f of await this.local.list(dir)) {
      const colon = f.lastIndexOf(':2,');
      const unique = colon > 0 ? f.slice(0, colon) : f;
      const list = m.get(unique);
      if (list === undefined) m.set(unique, [f]); else list.push(f);
    }
    this.listings.set(dir, m);
    return m;
  }
}
