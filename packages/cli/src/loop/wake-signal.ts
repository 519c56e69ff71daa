/**
 * SIGUSR1 wakes smd-loop. Node 20 starts its inspector (127.0.0.1:9229) on SIGUSR1
 * unless a JS listener exists (it has no --disable-sigusr1), so the listener is installed
 * as this module loads: smd-loop imports it first, before its other modules load. It is
 * never removed: without a listener SIGUSR1 would kill the process.
 */
let handler: (() => void) | null = null;
let early = false;
process.on('SIGUSR1', () => {
  if (handler !== null) handler();
  else early = true;
});

/** Sets what SIGUSR1 does (null: nothing). Returns whether one arrived while there was no handler. */
export function onWakeSignal(h: (() => void) | null): boolean {
  handler = h;
  const was = early;
  early = false;
  return was;
}
