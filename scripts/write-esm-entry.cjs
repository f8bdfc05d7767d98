// Writes dist/index.mjs: an ES module entry re-exporting the CommonJS build, so the
// package works with both `import` and `require` from one compiled copy (one native
// addon instance, one set of classes: `instanceof` works across both).
const fs = require('fs');
const path = require('path');
const cjs = require(path.join(__dirname, '..', 'dist', 'core', 'index.js'));
const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule');
const body = [
  "import { createRequire } from 'node:module';",
  'const require = createRequire(import.meta.url);',
  "const cjs = require('./core/index.js');",
  ...names.map((n) => `export const ${n} = cjs.${n};`),
  'export default cjs;',
  '',
].join('\n');
fs.writeFileSync(path.join(__dirname, '..', 'dist', 'index.mjs'), body);
