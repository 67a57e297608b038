// The addon in worker threads (the data pipeline's piscina pool, a role's helpers):
// each worker loads its own instance, kernels run there, and argument errors arrive as
// ordinary exceptions in the worker. The worker is terminated even if a check fails.
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { native } from '../../src/native.js';
import { distPath } from '../../src/util/paths.js';

// Runs in the worker: a kernel, a thread setting, and a bad call.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.nativeUrl).then(({ native }) => {
  native.setThreads(1);
  const a = new Float32Array([1, 2, 3]), b = new Float32Array([10, 20, 30]), out = new Float32Array(3);
  native.add(out, a, b);
  let error = null;
  try { native.add(out, a, new Float32Array(2)); } catch (e) { error = e.constructor.name + ': ' + e.message; }
  parentPort.postMessage({ sum: Array.from(out), threads: native.getThreads(), error });
}, (e) => parentPort.postMessage({ loadError: String(e) }));
`;

t.test('kernels run and check arguments inside a worker thread', async (t) => {
  native.setThreads(2);
  const worker = new Worker(workerSource, {
    eval: true,
    workerData: { nativeUrl: pathToFileURL(distPath('src/native.js')).href },
  });
  t.teardown(() => worker.terminate());
  const msg = await new Promise<Record<string, unknown>>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before answering`)));
  });
  t.equal(msg.loadError, undefined, 'the addon loads in the worker');
  t.same(msg.sum, [11, 22, 33], 'add ran in the worker');
  t.equal(msg.threads, 1, 'the worker sets its own kernel thread count');
  t.equal(native.getThreads(), 2, "the worker's setting does not change the main thread's");
  t.equal(msg.error, "RangeError: add: argument 'b' must have at least 3 elements, got 2", 'a bad call throws in the worker');
});
