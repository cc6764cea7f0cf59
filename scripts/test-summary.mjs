// Prints vitest's result as one plain closing line ("N passed, N failed, N skipped")
// from its JSON report, so CI and people read the same verdict at the end of the log.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.vitest-results.json';
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`0 passed, 1 failed (no test report at ${file}: ${err.message})`);
  process.exit(1);
}
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
const failedSuites = (r.testResults ?? []).filter((t) => t.status === 'failed' && (t.assertionResults ?? []).every((a) => a.status !== 'failed')).length;
const failed = r.numFailedTests + failedSuites;
console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || !r.success ? 1 : 0);
