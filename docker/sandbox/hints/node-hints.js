// Preloaded into every Node run (hints/node, the sandbox's node): when require()
// cannot find a package, its error says that nothing can be installed in
// the sandbox (no network) and what to use instead, from hints.json.  The
// error is the same error, with the same code; only its message grows.
// Costs nothing until a lookup fails.
'use strict';
const Module = require('module');

const resolve = Module._resolveFilename;
let hints;

function note(request) {
  const parts = request.split('/');
  const name = request.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  if (hints === undefined) {
    try {
      hints = JSON.parse(require('fs').readFileSync('/opt/cip/hints/hints.json', 'utf8'));
    } catch (e) {
      hints = null;
    }
  }
  if (!hints) return null;
  const entry = (hints.node || {})[name];
  if (entry) {
    return `[sandbox] ${entry.package} is not installed here, and nothing can be installed: ` +
      `the sandbox has no network. Instead: ${entry.instead}.`;
  }
  return hints.node_default ? `[sandbox] Cannot find '${name}': ${hints.node_default}` : null;
}

Module._resolveFilename = function (request, ...rest) {
  try {
    return resolve.call(this, request, ...rest);
  } catch (err) {
    const bare = typeof request === 'string' && !/^(\.|\/|node:)/.test(request) &&
      !Module.builtinModules.includes(request);
    if (bare && err && err.code === 'MODULE_NOT_FOUND' && !err.cipHinted) {
      const line = note(request);
      if (line) {
        const first = err.message.split('\n')[0];
        err.message = `${first}\n${line}${err.message.slice(first.length)}`;
        if (typeof err.stack === 'string') err.stack = err.stack.replace(first, `${first}\n${line}`);
        err.cipHinted = true;
      }
    }
    throw err;
  }
};
