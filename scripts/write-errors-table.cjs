#!/usr/bin/env node
// Rewrites README.md's table of ERR_RINGMASTER_* codes from core/error-codes.ts (the one
// source; test/unit/error-codes.test.ts checks that they agree). Run after `npm run build:ts`.
const fs = require('node:fs');
const path = require('node:path');
const { ERROR_CODES } = require('../dist/core/error-codes.js');
const readme = path.join(__dirname, '..', 'README.md');
const text = fs.readFileSync(readme, 'utf8');
const head = '| code | when |\n|---|---|\n';
const start = text.indexOf(head, text.indexOf('The `ERR_RINGMASTER_*` codes'));
if (start < 0) throw new Error("README.md has no errors table after 'The `ERR_RINGMASTER_*` codes'");
const body = start + head.length;
let end = body;
while (text.startsWith('|', end)) end = text.indexOf('\n', end) + 1;
const rows = Object.entries(ERROR_CODES).map(([code, when]) => `| \`${code}\` | ${when} |\n`).join('');
fs.writeFileSync(readme, text.slice(0, body) + rows + text.slice(end));
