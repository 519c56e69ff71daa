import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { patternListMatch } from './pattern.js';

/** OpenSSH's fingerprint of a public key blob: `SHA256:` + base64 without padding. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type inside a public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...). */
export function keyBlobType(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const n = keyBlob.readUInt32BE(0);
  if (n > keyBlob.length - 4) return 'unknown';
  return keyBlob.subarray(4, 4 + n).toString('latin1');
}

/** How OpenSSH names a key type in messages: ED25519, ECDSA, RSA, DSA. */
export function keyTypeLabel(type: string): string {
  if (type === 'ssh-ed25519') return 'ED25519';
  if (type.startsWith('ecdsa-')) return 'ECDSA';
  if (type === 'ssh-rsa') return 'RSA';
  if (type === 'ssh-dss') return 'DSA';
  return type;
}

/** The name a host is recorded under in known_hosts: `host`, or `[host]:port` off port 22. */
export function knownHostsName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

export interface KnownHostsEntry {
  readonly file: string;
  readonly line: number;
  readonly marker: 'revoked' | 'cert-authority' | null;
  readonly hosts: string;
  readonly keyType: string;
  readonly key: Buffer;
}

/** Reads every usable line of known_hosts files (missing files are skipped). */
export function readKnownHosts(files: readonly string[]): KnownHostsEntry[] {
  const out: KnownHostsEntry[] = [];
  for (const file of files) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const f = line.split(/\s+/);
      let marker: KnownHostsEntry['marker'] = null;
      if (f[0]!.startsWith('@')) {
        const m = f.shift()!;
        if (m === '@revoked') marker = 'revoked';
        else if (m === '@cert-authority') marker = 'cert-authority';
        else continue;
      }
      if (f.length < 3) continue;
      const key = Buffer.from(f[2]!, 'base64');
      if (key.length === 0) continue;
      out.push({ file, line: i + 1, marker, hosts: f[0]!, keyType: f[1]!, key });
    }
  }
  return out;
}

/** Whether a known_hosts host field (`a,b,!c`, `[h]:p`, `*.x`, or `|1|salt|hash`) names one of `names`. */
export function hostFieldMatches(field: string, names: readonly string[]): boolean {
  if (field.startsWith('|1|')) {
    const parts = field.split('|');
    if (parts.length !== 4) return false;
    const salt = Buffer.from(parts[2]!, 'base64');
    const hash = Buffer.from(parts[3]!, 'base64');
    if (hash.length !== 20) return false;
    return names.some((n) => timingSafeEqual(createHmac('sha1', salt).update(n).digest(), hash));
  }
  const list = field.split(',');
  return names.some((n) => patternListMatch(list, n));
}

export type HostKeyVerdict =
  | { status: 'ok'; entry: KnownHostsEntry }
  | { status: 'unknown' }
  | { status: 'changed'; recorded: KnownHostsEntry[] }
  | { status: 'revoked'; entry: KnownHostsEntry };

/**
 * Checks a presented host key against known_hosts entries for `names` (the
 * known_hosts name(s) of the host). `@revoked` wins over everything;
 * `@cert-authority` lines are ignored (no certificates here).
 */
export function checkHostKey(entries: readonly KnownHostsEntry[], names: readonly string[], key: Buffer): HostKeyVerdict {
  const forHost = entries.filter((e) => hostFieldMatches(e.hosts, names));
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key) && (e.hosts === '*' || forHost.includes(e)));
  if (revoked !== undefined) return { status: 'revoked', entry: revoked };
  const plain = forHost.filter((e) => e.marker === null);
  const ok = plain.find((e) => e.key.equals(key));
  if (ok !== undefined) return { status: 'ok', entry: ok };
  if (plain.length > 0) return { status: 'changed', recorded: plain };
  return { status: 'unknown' };
}

/** Host key algorithms to ask for, those already recorded for the host first (as OpenSSH does). */
export function preferredHostKeyAlgorithms(entries: readonly KnownHostsEntry[], names: readonly string[]): string[] {
  const all = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  const first: string[] = [];
  for (const e of entries) {
    if (e.marker !== null || !hostFieldMatches(e.hosts, names)) continue;
    const algos = e.keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [e.keyType];
    for (const a of algos) if (all.includes(a) && !first.includes(a)) first.push(a);
  }
  return [...first, ...all.filter((a) => !first.includes(a))];
}
