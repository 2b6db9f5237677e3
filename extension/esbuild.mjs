// Bundles the extension and its one dependency (vscode-languageclient) into dist/extension.js, so the
// .vsix carries no node_modules. `--production` minifies; the default build keeps a source map.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');

await esbuild.build({
  entryPoints: ['src/extension.ts'],
  bundle: true,
  outfile: 'dist/extension.js',
  platform: 'node',
  format: 'cjs',
  // VS Code 1.91 runs extensions on Node 20.
  target: 'node20',
  external: ['vscode'],
  minify: production,
  sourcemap: !production,
  logLevel: 'warning',
});
