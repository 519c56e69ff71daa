#!/usr/bin/env node
// What the run journal costs per message (CPU only, no I/O): the client
// decodes Subject/From/Date from the message's first bytes and formats a
// JOURNAL line; the wrapper parses it and formats the journal record.
//
//   npm run build && node bench/journal.mjs [N]
import { messageSummary } from '../packages/maildir/dist/index.js';
import { formatJournalLine, parseJournalLine } from '../packages/protocol/dist/index.js';

const N = Number(process.argv[2] ?? 100000);
const head = Buffer.from([
  'Received: from mx.example.org by mail.example.org; Mon, 1 Jan 2024 10:00:00 +0000',
  '  (envelope-from <a@b.c>)',
  'Received: from c.example.org',
  'Message-Id: <1700000000.1@example.org>',
  'From: =?utf-8?q?Andr=C3=A9?= <a@b.c>',
  'To: me@example.org',
  'Subject: Re: the meeting tomorrow =?utf-8?q?caf=C3=A9?=',
  'Date: Mon, 1 Jan 2024 10:00:00 +0000',
  'Content-Type: text/plain',
  '',
  'body',
].join('\n'));
let bytes = 0;
const t0 = performance.now();
for (let i = 0; i < N; i++) {
  const s = messageSummary(head);
  const line = formatJournalLine({
    time: new Date().toISOString(), action: 'new', path: `Mail/cur/1700000000.M${i}P123.host:2,S`, folder: 'Mail',
    subject: s.subject ?? undefined, sender: s.from ?? undefined, date: s.date ?? undefined, size: 12345,
  });
  const e = parseJournalLine(line);
  bytes += JSON.stringify({ run: '2026-12-01T10:00:00.000Z', endpoint: 'default', direction: 'pull', ...e }).length + 1;
}
const ms = performance.now() - t0;
console.log(`${N} messages: ${(ms / N * 1000).toFixed(1)} µs per message, ${Math.round(bytes / N)} bytes per journal record`);
