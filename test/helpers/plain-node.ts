/**
 * Every spawn of a test process runs without tap's process tracker
 * (helpers/plain-children.mjs, loaded through .taprc, says why). This marker
 * is what the spawns that asked for it explicitly before that still add; it
 * is removed from the child's environment.
 */
export const PLAIN_NODE: Readonly<Record<string, string>> = { SMD_TEST_PLAIN_NODE: '1' };
