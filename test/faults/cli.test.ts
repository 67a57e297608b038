// Bad files and disks met through the command line, as a user meets them:
// each run ends with exit code 1 and a message naming the file, tensor, key,
// role or path (never "done"), and nothing spins or hangs (every run has a
// timeout).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CheckpointTensors, writeSafetensors, type NamedArray } from '../../src/models/safetensors.js';
import { quartet } from '../e2e/quartet.js';
import { makeTinyRun } from '../e2e/tiny-run.js';
import { mountTmpfs } from './mounts.js';

const dir = mkdtempSync(join(tmpdir(), 'q-faults-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const world = makeTinyRun(join(dir, 'world'), { rows: 40, seed: 2 });
const timeoutMs = 90_000;
const sft = (model: string, out: string, ...flags: string[]) =>
  ['sft', '--actor-model', model, '--data', world.data, '--output-dir', out, '--sft.batchSize=2', ...flags];

/** A copy of the tiny model with one value of `tensor` set to `value`. */
function poisonedModel(name: string, tensor: RegExp, value: number): { dir: string; tensor: string } {
  const m = join(dir, name);
  cpSync(world.model, m, { recursive: true });
  const c = new CheckpointTensors(m);
  const all: NamedArray[] = c.names().map((n) => ({ name: n, shape: c.entry(n).shape, data: c.readF32(n) }));
  c.close();
  const hit = all.find((x) => tensor.test(x.name))!;
  hit.data[3] = value;
  writeSafetensors(join(m, 'model.safetensors'), all);
  return { dir: m, tensor: hit.name };
}

t.test('NaN weights: refused at load, naming the file and tensor', async (t) => {
  const bad = poisonedModel('nan', /h\.0\.attn\.c_attn\.weight$/, NaN);
  const out = join(dir, 'out-nan');
  const r = await quartet(t, sft(bad.dir, out), { timeoutMs });
  t.equal(r.code, 1);
  t.notMatch(r.stdout, /done in/);
  const text = `tensor '${bad.tensor}' in ${join(bad.dir, 'model.safetensors')} holds 1 non-finite value(s)`;
  const log = join(out, 'logs', 'actor-0.log');
  t.match(readFileSync(log, 'utf8'), text, "the role's log names it");
  // The message itself, or (until the runtime makes a load error fatal and shows it) the log that holds it.
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  t.match(r.stderr, new RegExp(`${esc(text)}|${esc(log)}`), 'the user is shown it, or where it is');
});

t.test('NaN weights allowed: the non-finite updates stop SFT at step 3, naming the step and role; exit 1, not "done"', async (t) => {
  const bad = poisonedModel('nan-allowed', /h\.0\.attn\.c_attn\.weight$/, NaN);
  const r = await quartet(t, sft(bad.dir, join(dir, 'out-nan-allowed'), '--checks.allowNonFiniteWeights=true'), { timeoutMs });
  t.equal(r.code, 1);
  t.match(r.stderr, /quartet: sft: training stopped at step 3: the actor's loss [^;]+; its update was skipped for a non-finite gradient norm \(3 in a row, since step 1\)\. checks\.maxSkippedSteps = 3/);
  t.notMatch(r.stdout, /done in/);
  const r1 = await quartet(t, sft(bad.dir, join(dir, 'out-nan-1'), '--checks.allowNonFiniteWeights=true', '--checks.maxSkippedSteps=1'), { timeoutMs });
  t.equal(r1.code, 1);
  t.match(r1.stderr, /sft: training stopped at step 1: the actor's loss/);
});

t.test('a config.json without n_embd names the file, the key and the family', async (t) => {
  const m = join(dir, 'no-embd');
  cpSync(world.model, m, { recursive: true });
  const { n_embd, ...cfg } = JSON.parse(readFileSync(join(m, 'config.json'), 'utf8'));
  t.ok(n_embd);
  writeFileSync(join(m, 'config.json'), JSON.stringify(cfg));
  const r = await quartet(t, sft(m, join(dir, 'out-embd')), { timeoutMs });
  t.equal(r.code, 1);
  t.match(r.stderr, `sft: actor.model = '${m}': config: ${join(m, 'config.json')}: 'n_embd' (hidden size) is missing; a gpt2 config.json must give every architecture size`);
});

t.test('--output-dir /proc/1/x: refused before anything starts, without spinning', async (t) => {
  const t0 = Date.now();
  const r = await quartet(t, sft(world.model, '/proc/1/x'), { timeoutMs: 30_000 });
  t.equal(r.code, 1);
  t.ok(Date.now() - t0 < 30_000, 'within the timeout');
  t.match(r.stderr, 'quartet: outputDir /proc/1/x is not usable: cannot create directory /proc/1/x: ENOENT (no such file or directory); /proc/1 exists, but its file system does not allow new directories');
});

t.test('an output dir under a regular file is ENOTDIR', async (t) => {
  writeFileSync(join(dir, 'a-file'), 'x');
  const r = await quartet(t, sft(world.model, join(dir, 'a-file', 'run')), { timeoutMs: 30_000 });
  t.equal(r.code, 1);
  t.match(r.stderr, /outputDir .*a-file\/run is not usable: .*ENOTDIR \(not a directory\)/);
});

t.test('a read-only output dir is EROFS, named, not ENOENT', async (t) => {
  const ro = join(dir, 'ro');
  if (!mountTmpfs(t, ro, { size: '1m', readOnly: true })) return;
  const r = await quartet(t, sft(world.model, join(ro, 'run')), { timeoutMs: 30_000 });
  t.equal(r.code, 1);
  t.match(r.stderr, `quartet: outputDir ${join(ro, 'run')} is not usable: cannot create directory ${join(ro, 'run')}: EROFS (read-only file system)`);
  t.notMatch(r.stderr, /ENOENT/);
});

t.test('ENOSPC at a checkpoint names the role, the folder, the file and the errno', async (t) => {
  const out = join(dir, 'out-full');
  const ckpts = join(out, 'checkpoints');
  mkdirSync(ckpts, { recursive: true });
  // Room for the run's small files, not for a model with its optimizer state.
  if (!mountTmpfs(t, ckpts, { size: '128k' })) return;
  const r = await quartet(t, sft(world.model, out, '--sft.saveEvery=1'), { timeoutMs });
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`quartet: actor/0 could not save ${ckpts}/sft/step-1/model: .*cannot write tensors to ${ckpts}/sft/step-1/model/model\\.safetensors: ENOSPC \\(no space left on device\\)`));
  t.notMatch(r.stderr, /^\s+at /m, 'no stack trace');
});
