/**
 * The per-command policy of smd-client (upstream spec 5.4), as a pure
 * function: a diff command + the observed local state of the names it
 * involves → what to do. No I/O here; the session (session.ts) observes,
 * decides, then executes.
 */
import type { ByteString } from '@smd/maildir';
import type { ErrorTags } from '@smd/protocol';
import type { DiffCommand } from '@smd/snapshot';
import { mergedName } from './flags.js';

/** What is on disk at a name, as the policy sees it. */
export type LocalState =
  /** Missing, or an empty file (upstream 1.2.6.2: empty counts as absent). */
  | { readonly kind: 'absent' }
  | { readonly kind: 'message'; readonly header: string; readonly body: string }
  /** Something that is not a message (no header, unreadable, a directory): never matches any hashes. */
  | { readonly kind: 'other'; readonly why: string };

export const ABSENT: LocalState = { kind: 'absent' };
export const message = (header: string, body: string): LocalState => ({ kind: 'message', header, body });

/**
 * - `ok`: nothing to do (already done, or the local change wins as upstream);
 * - `fetch`: GET `name`, verify (header, body), put it in place. `replace`
 *   null: the name must still be absent when the data arrives; otherwise the
 *   hashes the local file must still have to be overwritten (REPLACE);
 * - `copy`: local copy from→to, verified (header, body), to must stay absent;
 * - `rename`: from→to (from verified (header, body)), to must stay absent;
 * - `unlink`: remove `name`, which has (header, body);
 * - `merge-header`: GETHEADER name (must hash to `header`) + local body of
 *   `name` (which must still be (oldHeader, body));
 * - `copy-then-merge`: GETHEADER `to` + body of `from` (body hash `body`) → `to`;
 * - `merge-flags`: the other side renamed a message whose flags this side
 *   changed meanwhile (`from` is the local file): rename it to `to`, which
 *   has the merged flags (flags.ts) in the other side's folder;
 * - `kept`: the other side deleted a message this side renamed (changed
 *   its flags) meanwhile: nothing is deleted; the next run the other way
 *   sends it back;
 * - `conflict`: local state disagrees; a human must look (ABORT, exit 3);
 * - `failure`: the diff itself reports a failure (ERROR line; ABORT, exit 3).
 */
export type Decision =
  | { readonly kind: 'ok'; readonly reason: string }
  | { readonly kind: 'fetch'; readonly name: ByteString; readonly header: string; readonly body: string; readonly replace: { readonly header: string; readonly body: string } | null; readonly note?: string }
  | { readonly kind: 'copy'; readonly from: ByteString; readonly to: ByteString; readonly header: string; readonly body: string }
  | { readonly kind: 'rename'; readonly from: ByteString; readonly to: ByteString; readonly header: string; readonly body: string }
  | { readonly kind: 'unlink'; readonly name: ByteString; readonly header: string; readonly body: string }
  | { readonly kind: 'merge-header'; readonly name: ByteString; readonly oldHeader: string; readonly header: string; readonly body: string }
  | { readonly kind: 'copy-then-merge'; readonly from: ByteString; readonly to: ByteString; readonly header: string; readonly body: string }
  | { readonly kind: 'merge-flags'; readonly from: ByteString; readonly to: ByteString; readonly header: string; readonly body: string; readonly flags: { readonly from: string; readonly to: string } }
  | { readonly kind: 'kept'; readonly name: ByteString; readonly note: string }
  | { readonly kind: 'conflict'; readonly message: string; readonly tags: ErrorTags }
  | { readonly kind: 'failure'; readonly message: string; readonly tags: ErrorTags };

/** How names are shown in messages and TAGS actions. */
export interface PolicyContext {
  /** Absolute path of a name, for display-mail / run(...) actions (a ByteString). */
  absolute(name: ByteString): string;
  /** Human-readable form of a name for messages (e.g. toUtf8). */
  show(name: ByteString): string;
}

/** Upstream's temp name for a message path: the last `cur`/`new` component replaced by `tmp`. */
export function upstreamTmpName(name: ByteString): ByteString {
  const parts = name.split('/');
  for (let i = parts.length - 2; i >= 0; i--) {
    if (parts[i] === 'cur' || parts[i] === 'new') { parts[i] = 'tmp'; return parts.join('/'); }
  }
  return name;
}

/** Every name a command involves (to observe, and to wait for pending fetches on). */
export function namesOf(c: DiffCommand): ByteString[] {
  switch (c.op) {
    case 'ADD': case 'DELETE': case 'REPLACEHEADER': case 'REPLACE': return [c.name];
    case 'COPY': case 'MOVE': case 'COPYBODY': return [c.from, c.to];
    case 'ERROR': return [];
  }
}

const is = (s: LocalState, header: string, body: string): boolean =>
  s.kind === 'message' && s.header === header && s.body === body;
const present = (s: LocalState): boolean => s.kind !== 'absent';

function conflict(context: string, message: string, actions: string[]): Decision {
  return {
    kind: 'conflict', message,
    tags: { context, probableCause: 'concurrent-mailbox-edit', humanIntervention: 'necessary', suggestedActions: actions },
  };
}

const q = (s: string): string => `"${s}"`;

/** A local file of the same message as a name (same folder and unique part, other flags), and its state. */
export interface Sibling { readonly name: ByteString; readonly state: LocalState }

/** Siblings of a name (never the name itself); the session lists the folder, tests give them directly. */
export type Siblings = (name: ByteString) => readonly Sibling[];

const NO_SIBLINGS: Siblings = () => [];

/**
 * The decision for one command. `local(name)` is the observed state of a
 * name of the command; `siblings(name)` the local files of the same message
 * under other flags (asked only when a name the command needs is missing).
 */
export function decide(c: DiffCommand, local: (name: ByteString) => LocalState, ctx: PolicyContext, siblings: Siblings = NO_SIBLINGS): Decision {
  const display = (n: ByteString): string => `display-mail(${q(ctx.absolute(n))})`;
  const rm = (n: ByteString): string => `run(rm ${q(ctx.absolute(n))})`;
  const changed = (n: ByteString, what: string): string =>
    `${ctx.show(n)}: ${what}, but the local file has been modified meanwhile`;
  switch (c.op) {
    case 'ADD': {
      const n = local(c.name);
      if (!present(n)) return { kind: 'fetch', name: c.name, header: c.header, body: c.body, replace: null };
      if (is(n, c.header, c.body)) return { kind: 'ok', reason: 'already there' };
      return conflict('mail-addition', `${ctx.show(c.name)}: a new message with this name arrived, but a different local message has the same name`,
        [`run(mv -n ${q(ctx.absolute(c.name))} ${q(ctx.absolute(upstreamTmpName(c.name)))})`]);
    }
    case 'DELETE': {
      const n = local(c.name);
      if (!present(n)) {
        const touched = siblings(c.name).find((x) => present(x.state));
        return touched !== undefined
          ? { kind: 'kept', name: touched.name, note: 'deleted on the other side, but its flags were changed here: kept, the other side gets it back at its next sync' }
          : { kind: 'ok', reason: 'already deleted' };
      }
      if (is(n, c.header, c.body)) return { kind: 'unlink', name: c.name, header: c.header, body: c.body };
      return conflict('delete-message', changed(c.name, 'deleted on the other side'),
        [display(c.name), rm(c.name), 'run(@@INVERSECOMMAND@@ @@ENDPOINT@@)']);
    }
    case 'COPY': {
      const s = local(c.from);
      const t = local(c.to);
      const copyConflict = (): Decision => conflict('copy-message', changed(c.to, `copy of ${ctx.show(c.from)}`), [display(c.to), rm(c.to)]);
      if (present(s) && present(t)) {
        return is(s, c.header, c.body) && is(t, c.header, c.body) ? { kind: 'ok', reason: 'already copied' } : copyConflict();
      }
      if (present(s)) {
        return is(s, c.header, c.body)
          ? { kind: 'copy', from: c.from, to: c.to, header: c.header, body: c.body }
          : { kind: 'fetch', name: c.to, header: c.header, body: c.body, replace: null };
      }
      if (present(t)) return is(t, c.header, c.body) ? { kind: 'ok', reason: 'already copied' } : copyConflict();
      return { kind: 'fetch', name: c.to, header: c.header, body: c.body, replace: null };
    }
    case 'MOVE': {
      // Nothing moves (a lying or broken peer): never delete the message.
      if (c.from === c.to) return { kind: 'ok', reason: 'source and target are the same name' };
      const s = local(c.from);
      const t = local(c.to);
      if (present(s) && present(t)) {
        if (!is(t, c.header, c.body)) {
          return conflict('move-message', changed(c.to, `move target of ${ctx.show(c.from)}`), [display(c.to), rm(c.to)]);
        }
        return is(s, c.header, c.body)
          ? { kind: 'unlink', name: c.from, header: c.header, body: c.body }
          : { kind: 'ok', reason: 'already moved (the source has local changes and is kept)' };
      }
      if (present(s)) {
        return is(s, c.header, c.body)
          ? { kind: 'rename', from: c.from, to: c.to, header: c.header, body: c.body }
          : { kind: 'fetch', name: c.to, header: c.header, body: c.body, replace: null };
      }
      if (present(t)) {
        return is(t, c.header, c.body)
          ? { kind: 'ok', reason: 'already moved' }
          : conflict('copy-message', changed(c.to, `move target of ${ctx.show(c.from)}`), [display(c.to), rm(c.to)]);
      }
      // Neither is here: renamed here too (its flags changed), or deleted here.
      for (const x of siblings(c.from)) {
        if (!is(x.state, c.header, c.body) || x.name === c.to) continue;
        const m = mergedName(c.from, c.to, x.name);
        if (m === null) continue;
        if (m.name === x.name) return { kind: 'ok', reason: `flags changed on both sides: ${ctx.show(x.name)} already has the merged flags` };
        return { kind: 'merge-flags', from: x.name, to: m.name, header: c.header, body: c.body, flags: { from: m.from, to: m.to } };
      }
      return { kind: 'fetch', name: c.to, header: c.header, body: c.body, replace: null,
        note: 'deleted or moved away here, but changed on the other side: fetched again (a message just changed is never lost)' };
    }
    case 'REPLACEHEADER': {
      const n = local(c.name);
      if (!present(n)) return { kind: 'fetch', name: c.name, header: c.newHeader, body: c.body, replace: null };
      if (is(n, c.header, c.body)) return { kind: 'merge-header', name: c.name, oldHeader: c.header, header: c.newHeader, body: c.body };
      if (is(n, c.newHeader, c.body)) return { kind: 'ok', reason: 'header already replaced' };
      return conflict('header-replacement', changed(c.name, 'header changed on the other side'), [display(c.name), rm(c.name)]);
    }
    case 'COPYBODY': {
      const t = local(c.to);
      if (present(t)) {
        return is(t, c.toHeader, c.body)
          ? { kind: 'ok', reason: 'already there' }
          : conflict('copy-body', changed(c.to, `new message sharing its body with ${ctx.show(c.from)}`), [display(c.to), rm(c.to)]);
      }
      const s = local(c.from);
      if (s.kind === 'message' && s.body === c.body) return { kind: 'copy-then-merge', from: c.from, to: c.to, header: c.toHeader, body: c.body };
      return { kind: 'fetch', name: c.to, header: c.toHeader, body: c.body, replace: null };
    }
    case 'REPLACE': {
      const n = local(c.name);
      if (!present(n)) return { kind: 'fetch', name: c.name, header: c.newHeader, body: c.newBody, replace: null };
      if (is(n, c.newHeader, c.newBody)) return { kind: 'ok', reason: 'already replaced' };
      if (is(n, c.header, c.body)) {
        return { kind: 'fetch', name: c.name, header: c.newHeader, body: c.newBody, replace: { header: c.header, body: c.body } };
      }
      return conflict('replace', changed(c.name, 'replaced on the other side'), [display(c.name), rm(c.name)]);
    }
    case 'ERROR':
      return c.message.startsWith('Unable to open directory')
        ? { kind: 'failure', message: `mddiff failed: ${c.message}`, tags: { context: 'mddiff', probableCause: 'directory-disappeared', humanIntervention: 'avoidable' } }
        : { kind: 'failure', message: `mddiff failed: ${c.message}`, tags: { context: 'mddiff', probableCause: 'unknown', humanIntervention: 'necessary' } };
  }
}
