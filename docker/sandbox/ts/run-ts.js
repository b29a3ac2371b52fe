// Run a TypeScript file the way LibreChat's official code API (Bun) does:
// transpile only, no type checking, so code that is valid at run time is
// not refused for missing typings.  Syntax errors are reported with their
// line and column, on stderr, with exit status 1 (a "compile error").
'use strict';
const fs = require('fs');
const path = require('path');
const ts = require('typescript');

const file = process.argv[2];
const source = fs.readFileSync(file, 'utf8');
const out = ts.transpileModule(source, {
  fileName: file,
  reportDiagnostics: true,
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020,
    esModuleInterop: true },
});
const errors = (out.diagnostics || []).filter((d) => d.category === ts.DiagnosticCategory.Error);
if (errors.length) {
  for (const d of errors) {
    const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file && d.start !== undefined) {
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      process.stderr.write(`${file}(${line + 1},${character + 1}): error TS${d.code}: ${msg}\n`);
    } else {
      process.stderr.write(`error TS${d.code}: ${msg}\n`);
    }
  }
  process.exit(1);
}
const js = path.join('/tmp', path.basename(file).replace(/\.ts$/, '') + '.cip.js');
fs.writeFileSync(js, out.outputText);
// The program sees its own file name and its arguments, as under node.
process.argv = [process.argv[0], path.resolve(file), ...process.argv.slice(3)];
require(js);
