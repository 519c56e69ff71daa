#!/usr/bin/env node
// Builds lib/: one ES module bundle per command (lib/<command>.js) plus the
// hash worker (lib/hash-worker.js) and the chunks they share, from the
// compiled workspace (packages/*/dist: run `tsc -b` first; `npm pack` does
// both through the prepack script). The installed package runs these bundles
// (see bin/*): nothing to resolve in node_modules, a few files to read, and
// ssh2 in a chunk of its own that only the ssh2 transport loads.
//
// Left out of the bundles, and shipped as bundled dependencies instead
// (package.json bundleDependencies):
// - @smd/native: the optional C helper; npm runs its install script
//   (node-gyp) on the installing machine, which may have no compiler;
// - fast-diff: loaded with require() when a db-file patch is computed.
// ssh2's own optional native parts (its crypto binding, cpu-features) are
// left out: the bundled ssh2 uses its JavaScript fallbacks.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const commands = Object.keys(pkg.bin);
const cliDist = join(root, 'packages', 'cli', 'dist');
const out = join(root, 'lib');
const staging = join(root, `lib.${process.pid}.tmp`);

const entry = (name) => `import { runCommand } from ${JSON.stringify(join(cliDist, 'launch.js'))};
import { main } from ${JSON.stringify(join(cliDist, 'commands', `${name}.js`))};
void runCommand(${JSON.stringify(name)}, main);
`;

/** esbuild options shared by every bundle. */
const common = {
  absWorkingDir: root,
  outdir: staging,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  chunkNames: '[name]-[hash]',
  external: ['cpu-features', '*.node'],
  // CommonJS dependencies (ssh2, yargs' helpers) call require() and use __dirname / __filename.
  define: { __SMD_BUNDLED_VERSION__: JSON.stringify(pkg.version), __dirname: '__smdDirname', __filename: '__smdFilename' },
  banner: {
    js: [
      "import { createRequire as __smdCreateRequire } from 'node:module';",
      "import { fileURLToPath as __smdFileURLToPath } from 'node:url';",
      'const require = __smdCreateRequire(import.meta.url);',
      'const __smdFilename = __smdFileURLToPath(import.meta.url);',
      "const __smdDirname = __smdFilename.slice(0, __smdFilename.lastIndexOf('/'));",
    ].join(' '),
  },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  plugins: [{
    name: 'command-entries',
    setup(b) {
      b.onResolve({ filter: /^entry:/ }, (a) => ({ path: a.path.slice('entry:'.length), namespace: 'entry' }));
      // A bundled dependency is always in the package's own node_modules: a relative path spares Node the package lookup.
      b.onResolve({ filter: /^@smd\/native$/ }, () => ({ path: '../node_modules/@smd/native/dist/index.js', external: true }));
      b.onLoad({ filter: /.*/, namespace: 'entry' }, (a) => ({ contents: entry(a.path), resolveDir: root, loader: 'js' }));
    },
  }],
};

rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
// One build per command, code splitting on: a command is one file (plus what it shares with its
// dynamic imports), since every extra ES module costs a few ms to load; what it imports
// dynamically (ssh2, yargs for mddiff) stays in chunks it loads only when it needs them.
const outputs = {};
const builds = [
  ...commands.map((c) => ({ entryPoints: [{ in: `entry:${c}`, out: c }], splitting: true })),
  { entryPoints: [{ in: join(root, 'packages', 'maildir', 'dist', 'hash-worker.js'), out: 'hash-worker' }], splitting: false },
];
for (const b of await Promise.all(builds.map((o) => build({ ...common, ...o })))) Object.assign(outputs, b.metafile.outputs);

// The bundles find their chunks, the hash worker and the package root relative to their own URL: all stay in lib/.
rmSync(out, { recursive: true, force: true });
renameSync(staging, out);
if (process.argv.includes('--sizes')) {
  // Per output file: its size and what it is made of, by package.
  for (const [file, o] of Object.entries(outputs)) {
    const by = {};
    for (const [input, { bytesInOutput }] of Object.entries(o.inputs)) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)|packages\/([^/]+)/.exec(input);
      const key = m ? (m[1] ?? `@smd/${m[2]}`) : input;
      by[key] = (by[key] ?? 0) + bytesInOutput;
    }
    const parts = Object.entries(by).sort((a, b) => b[1] - a[1]).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${(n / 1024).toFixed(0)}K`);
    console.log(`${(o.bytes / 1024).toFixed(0).padStart(5)} KB  ${file.replace(`${staging}/`, 'lib/').padEnd(32)} ${parts.join(', ')}`);
  }
}
