// Disk errors in the library calls: the output-directory check (a bounded
// mkdir that keeps the real errno, then a probe file), and the writes of
// checkpoints, run state and metrics, each naming the path and the errno in
// words: EROFS, ENOSPC, ENOTDIR, and /proc's refusal, which Node's recursive
// mkdir turns into an endless loop.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readConfig } from '../../src/models/config.js';
import { readWeights, writeCheckpoint } from '../../src/models/checkpoint.js';
import { MetricsWriter } from '../../src/coordinator/metrics.js';
import { writeJsonAtomic } from '../../src/coordinator/run-dir.js';
import { ensureWritableDir, makeDirs } from '../../src/util/disk.js';
import { distRoot } from '../../src/util/paths.js';
import { variantDir } from '../models/fixtures.js';
import { mountTmpfs } from './mounts.js';

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'q-disk-'));
  // Registered first, so it runs after the unmounts registered later.
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('/proc/1/x: refused at once in a child process (no spin), naming the path and why', (t) => {
  // A child with a timeout: the old recursive mkdir never returned here.
  const code = `import('${join(distRoot, 'src', 'util', 'disk.js')}').then((m) => { try { m.ensureWritableDir('/proc/1/x/run'); console.log('no error'); } catch (e) { console.log(e.code + ' ' + e.message); } })`;
  const r = spawnSync(process.execPath, ['-e', code], { timeout: 20_000, encoding: 'utf8' });
  t.equal(r.signal, null, 'finished within the timeout');
  t.match(r.stdout, /^ENOENT output directory \/proc\/1\/x\/run is not usable: cannot create directory \/proc\/1\/x: ENOENT \(no such file or directory\); \/proc\/1 exists, but its file system does not allow new directories/);
  t.end();
});

t.test('a path through a regular file is ENOTDIR; a fresh nested path is created and probed', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'file'), 'x');
  t.throws(() => ensureWritableDir(join(dir, 'file', 'run')), { code: 'ENOTDIR', message: /output directory .*file\/run is not usable: .*ENOTDIR/ });
  t.throws(() => makeDirs(join(dir, 'file')), { code: 'ENOTDIR', message: /file is not a directory \(ENOTDIR\)/ });
  const ok = ensureWritableDir(join(dir, 'a', 'b', 'c'));
  t.same(readdirSync(ok), [], 'created, and the probe file removed');
  t.end();
});

t.test('a read-only file system is EROFS, not ENOENT: output dir, checkpoint, run state', (t) => {
  const dir = tmp(t);
  const ro = join(dir, 'ro');
  if (!mountTmpfs(t, ro, { size: '1m', readOnly: true })) return t.end();
  t.throws(() => ensureWritableDir(join(ro, 'run', 'x')), { code: 'EROFS', message: `output directory ${join(ro, 'run', 'x')} is not usable: cannot create directory ${join(ro, 'run')}: EROFS (read-only file system)` });
  t.throws(() => ensureWritableDir(ro), { code: 'EROFS', message: `output directory ${ro} is not usable: cannot write into ${ro}: EROFS (read-only file system)` });
  const src = variantDir('gpt2');
  const cfg = readConfig(src);
  t.throws(() => writeCheckpoint(join(ro, 'ck'), cfg, readWeights(src, cfg).params), { code: 'EROFS', message: `cannot create directory ${join(ro, 'ck')}: EROFS (read-only file system)` });
  t.throws(() => writeJsonAtomic(join(ro, 'state.json'), { a: 1 }), { code: 'EROFS', message: new RegExp(`cannot write ${join(ro, 'state.json')}: EROFS`) });
  t.end();
});

t.test('a full disk is ENOSPC naming the file: checkpoint tensors, run state, metrics', (t) => {
  const dir = tmp(t);
  const full = join(dir, 'full');
  if (!mountTmpfs(t, full, { size: '64k' })) return t.end();
  const src = variantDir('gpt2');
  const cfg = readConfig(src);
  const params = readWeights(src, cfg).params;
  // The fixture's weights are ~100 KB: they do not fit.
  t.throws(() => writeCheckpoint(join(full, 'ck'), cfg, params), { code: 'ENOSPC', message: `cannot write tensors to ${join(full, 'ck', 'model.safetensors')}: ENOSPC (no space left on device)` });
  rmSync(join(full, 'ck'), { recursive: true, force: true });
  writeFileSync(join(full, 'filler'), Buffer.alloc(60 * 1024).fill(1), { flag: 'w' });
  try {
    writeFileSync(join(full, 'filler2'), Buffer.alloc(16 * 1024));
  } catch {
    // The disk is full now, as wanted.
  }
  t.throws(() => writeJsonAtomic(join(full, 'state.json'), { big: 'x'.repeat(8192) }), { code: 'ENOSPC', message: new RegExp(`cannot write ${join(full, 'state.json')}: ENOSPC \\(no space left on device\\)`) });
  t.same(readdirSync(full).filter((f) => f.includes('.tmp-')), [], 'no temporary file left behind');
  const m = new MetricsWriter(join(full, 'metrics.jsonl'));
  t.throws(() => { for (let i = 0; i < 1000; i++) m.write('sft', i, { loss: 1, pad: 123456789 }); }, { code: 'ENOSPC', message: `cannot append to ${join(full, 'metrics.jsonl')}: ENOSPC (no space left on device)` });
  t.end();
});
