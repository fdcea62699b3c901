/**
 * buildPolicy in a worker thread, for policy directories large enough that parsing them could hold up
 * decisions (see loadPolicyDir): the files come in as workerData, the Policy (plain data and Dates)
 * or the problems go back as one message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../errors.js';
import { buildPolicy, PolicyLoadError } from './load.js';

const files = workerData as Array<{ path: string; text: string }>;
try {
  parentPort!.postMessage({ ok: true, policy: buildPolicy(files) });
} catch (err) {
  if (err instanceof PolicyLoadError) parentPort!.postMessage({ ok: false, code: err.code, problems: err.problems });
  else
    parentPort!.postMessage({
      ok: false,
      code: 'POLICY_INVALID',
      problems: [{ file: files[0]?.path ?? '(none)', message: `cannot be loaded: ${describeError(err)}` }],
    });
}
