// Preloaded into a defragd process by a test (node --import): writes "#package NAME" on
// stderr for each package the process loads from node_modules, whether by import (an ESM
// resolve hook) or by require() (Module._load). A package may be noted more than once.
import Module, { register } from 'node:module';
import { writeSync } from 'node:fs';

const PACKAGE = /node_modules\/((?:@[^/]+\/)?[^/]+)/;
const note = (where) => {
  const m = PACKAGE.exec(where);
  if (m) writeSync(2, `#package ${m[1]}\n`);
};

const load = Module._load;
Module._load = function (request, parent, isMain, ...rest) {
  const result = load.call(this, request, parent, isMain, ...rest);
  try {
    note(Module._resolveFilename(request, parent, isMain));
  } catch {
    /* a built-in, or nothing to note */
  }
  return result;
};

const hook = `import { writeSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const m = ${PACKAGE}.exec(r.url);
  if (m) writeSync(2, '#package ' + m[1] + '\\n');
  return r;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
