// The boundaries of ARCHITECTURE.md §8, enforced: native/ knows tensors, not
// models; src/tensor knows ops, not layers; src/models knows layers, not
// processes; src/runtime knows processes and messages, not models; actors/
// wires a model into a role server; src/coordinator knows roles by their
// methods only. Plus a cap on file length and no absolute machine paths.
// Each check is a function of test/architecture/checks.ts, run here on the
// repository and on a made-up tree where it must fail.
import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot } from '../src/util/paths.js';
import { type ImportException, type ImportRule, type LineCap, importViolations, longFiles, machinePaths } from './architecture/checks.js';

/** Who may import whom (allow-lists; an area always imports itself). src/util is the leaf every layer may use. */
const table: Record<string, ImportRule> = {
  'src/util': { may: [], why: 'paths, progress bars: imports nothing of the project' },
  'src/native.ts': { may: ['src/util'], why: 'the one typed declaration of the addon' },
  'src/tensor': { may: ['src/native.ts', 'src/util'], why: 'ops over the kernels, not layers' },
  'src/models': { may: ['src/tensor', 'src/util'], why: 'layers, not processes; the addon through src/tensor (one exception below)' },
  'src/training': { may: ['src/models', 'src/tensor', 'src/util'], why: 'the engines: typed settings in, nothing of requests, processes or config' },
  'src/runtime': { may: ['src/util'], why: 'processes and messages, not models, tensors or kernels' },
  'src/roles': { may: [], why: 'the role-method contract (meta types, start-up args), shared by coordinator and actors' },
  'src/config': { may: ['src/roles', 'src/runtime', 'src/util'], why: 'file -> validated config -> placement plan (the runtime\'s plan types)' },
  'src/data': { may: ['src/config', 'src/models', 'src/util'], why: 'datasets and tokenising (tokenizers live in src/models)' },
  'src/report': { may: ['src/util'], why: 'reads metrics.jsonl and summary.json; no pipeline, no demo' },
  'src/coordinator': { may: ['src/config', 'src/data', 'src/report', 'src/roles', 'src/runtime', 'src/util'], why: 'knows roles by their methods only: no models, engines or actors' },
  'src/chat': { may: ['src/config', 'src/data', 'src/models', 'src/tensor', 'src/util'], why: 'the in-process chat loop over a model' },
  'src/eval': { may: ['src/chat', 'src/data', 'src/models', 'src/training', 'src/util'], why: 'in-process evaluation of a checkpoint (reward engine, generation)' },
  'src/demo': { may: ['src/config', 'src/coordinator', 'src/data', 'src/models', 'src/report', 'src/roles', 'src/runtime', 'src/util'], why: 'an application of the pipeline: builds its model folder and data, then runs the steps' },
  'src/cli': { may: ['src/chat', 'src/config', 'src/coordinator', 'src/data', 'src/demo', 'src/eval', 'src/models', 'src/report', 'src/runtime', 'src/tensor', 'src/util'], why: 'the top: one command per file' },
  'actors': { may: ['src/native.ts', 'src/roles', 'src/runtime', 'src/training', 'src/util'], why: 'the seam: a role server (runtime) around an engine (training)' },
  'bench': { may: ['src/native.ts', 'src/tensor', 'src/models', 'src/runtime', 'src/coordinator', 'src/config', 'src/data', 'src/roles', 'src/util'], why: 'times each layer on its own' },
  'test': { may: ['src/*', 'actors', 'bench'], why: 'tests reach every layer' },
};
// 'src/*' in a row stands for every src area.
for (const rule of Object.values(table)) {
  if (rule.may.includes('src/*')) rule.may = [...rule.may.filter((a) => a !== 'src/*'), ...Object.keys(table).filter((a) => a.startsWith('src/'))];
}

const exceptions: ImportException[] = [
  { from: 'src/models/safetensors.ts', to: 'src/native.ts', why: 'f16/bf16 <-> f32 conversion of whole files at the disk boundary, before any tensor exists' },
  { from: 'src/coordinator/driver.ts', to: 'src/tensor/optim/schedule.ts', why: 'the learning-rate schedule the coordinator owns: pure arithmetic, no kernels, shared with src/tensor\'s LRScheduler' },
];

const importers = ['src', 'actors', 'bench', 'test'];

const caps: LineCap[] = [
  { dirs: ['src', 'actors', 'bench'], ext: ['.ts', '.py'], max: 400 },
  { dirs: ['native'], ext: ['.cc', '.h', '.cu'], max: 400 },
  // A test file reads top to bottom as a list of cases; past 500 lines it should split by subject.
  { dirs: ['test'], ext: ['.ts'], max: 500 },
];

/** Files over their cap today, each with the reason it may be. */
const longAllowed: Record<string, string> = {
  'src/coordinator/ppo.ts': 'the PPO driver (step, overlap schedule, experience, checkpoints) in one class; split the overlap schedule out next',
  'native/addon.cc': 'the one file that sees napi: the argument checks of every op in one table',
  'native/gemm_own.cc': 'the project\'s own GEMM (packing and micro-kernels), kept whole beside its lab variants',
  'native/cuda/check.cu': 'the cross-backend harness, never yet run on a GPU (docs/cuda.md): split per op family after its first device run, not blind',
  'native/cuda/attention.cu': 'forward, decode and backward of one attention, never yet run on a GPU: split after its first device run',
};

const pathDirs = ['src', 'actors', 'bench', 'scripts', 'test', 'docs', 'README.md', 'configs', 'examples', '.ci', 'native'];
const pathAllowed: { file: string; text: string; why: string }[] = [];

t.test('the import table covers every folder under src/', async (t) => {
  const folders = readdirSync(join(repoRoot, 'src'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `src/${d.name}`);
  t.same(folders.filter((f) => !(f in table)), [], 'a new folder needs a row: decide what it may import');
});

t.test('every import is allowed by the table', async (t) => {
  t.same(importViolations(repoRoot, table, exceptions, importers), []);
});

t.test('the rules ARCHITECTURE.md §8 names', async (t) => {
  const may = (a: string) => table[a].may;
  for (const banned of ['src/models', 'src/training', 'actors', 'src/tensor', 'src/native.ts']) t.notOk(may('src/coordinator').includes(banned), `src/coordinator may not import ${banned}`);
  t.notOk(may('src/report').includes('src/demo'), 'src/report may not import src/demo');
  for (const banned of ['src/models', 'src/tensor', 'src/training', 'src/native.ts']) t.notOk(may('src/runtime').includes(banned), `src/runtime may not import ${banned}`);
  const both = Object.keys(table).filter((a) => a !== 'test' && may(a).includes('src/runtime') && may(a).includes('src/training'));
  t.same(both, ['actors'], 'only actors/ imports both the runtime and the engines');
});

t.test(`source files stay under their line caps`, async (t) => {
  t.same(longFiles(repoRoot, caps, longAllowed), []);
});

t.test('no source, script, test or doc names an absolute path of a development machine', async (t) => {
  t.same(machinePaths(repoRoot, pathDirs, pathAllowed), []);
});

t.test('only native/addon.cc sees napi', async (t) => {
  const dir = join(repoRoot, 'native');
  const users = readdirSync(dir)
    .filter((f) => /\.(cc|h)$/.test(f) && /#include\s*[<"]napi\.h[>"]/.test(readFileSync(join(dir, f), 'utf8')));
  t.same(users, ['addon.cc']);
});

// The test of the tests: a made-up tree with one of each fault.
t.test('each check flags what it is for', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'quartet-arch-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const put = (rel: string, text: string) => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  // Specifiers are joined at run time so that this file's own imports stay what they are.
  const importLine = (spec: string) => `import { x } from '${spec}';\n`;
  put('src/models/m.ts', 'export const m = 1;\n');
  put('src/coordinator/ok.ts', importLine('../runtime/index.js'));
  put('src/coordinator/bad.ts', importLine('../models/m.js'));
  put('src/report/bad.ts', `const g = await import('${'../demo/gold.js'}');\n`);
  put('src/runtime/bad.ts', importLine('../native.js'));
  put('src/newfolder/a.ts', "export {};\n");
  const v = importViolations(root, table, exceptions, ['src']);
  t.match(v, [/^src\/coordinator\/bad\.ts imports src\/models\/m\.ts/, /^src\/newfolder\/a\.ts: area src\/newfolder has no row/, /^src\/report\/bad\.ts imports src\/demo\/gold\.ts/, /^src\/runtime\/bad\.ts imports src\/native\.ts/]);
  t.equal(v.length, 4, 'the allowed import is not flagged');

  put('src/util/long.ts', 'x\n'.repeat(401));
  put('src/util/short.ts', 'x\n'.repeat(400));
  put('test/long.test.ts', 'x\n'.repeat(450));
  t.same(longFiles(root, caps, {}), ['src/util/long.ts: 401 lines, over the cap of 400']);
  t.same(longFiles(root, caps, { 'src/util/long.ts': 'why', 'src/util/short.ts': 'stale' }), ['src/util/short.ts: on the allow-list but not over its cap (remove the entry)']);

  // Built from pieces so that this file does not name a machine path itself.
  const home = ['', 'home', 'alice', 'quartet'].join('/');
  put('docs/setup.md', [
    `Run ${home}/venv/bin/python.`, `Or ${['', 'Users', 'bob'].join('/')}/x.`, `Or ${['', 'work', 'venv'].join('/')}/bin/python.`, `Or C:${'\\'}Users${'\\'}carol.`,
    // Lookalikes that must not be flagged, spelled in pieces so this file names no machine path itself.
    `See https://example.com/${'home'}/page and ./${'work'}/notes, ~/${'work'}/x, /proc/self/status, /tmp/q, /usr/bin/python3.`,
  ].join('\n'));
  const found = machinePaths(root, ['docs'], []);
  t.same(found.map((f) => f.split(':')[1]), ['1', '2', '3', '4'], 'the four machine paths, not the URL, relative or system paths');
  t.same(machinePaths(root, ['docs'], [{ file: 'docs/setup.md', text: 'Run ', why: 'test' }]).length, 3, 'an allow-list entry covers its line only');
});
