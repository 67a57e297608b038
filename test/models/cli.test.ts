// `quartet init-model` and `quartet generate` as a user runs them: a fresh folder
// of every family, then greedy generation whose JSON ids and log-probs equal the
// library's generate() on the same folder.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../src/util/paths.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { generate } from '../../src/models/generate.js';

const run = promisify(execFile);
const bin = join(repoRoot, 'bin', 'quartet.js');
const quartet = (...args: string[]) => run(process.execPath, [bin, ...args], { cwd: repoRoot });

t.test('init-model then generate --json', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Two families through the command line (every family's init folder is checked in process in init.test.ts).
  for (const family of ['gpt2', 'llama']) {
    const out = join(dir, family);
    const init = await quartet('init-model', '--family', family, '--layers', '2', '--hidden', '32', '--heads', '4', '--vocab', '400', '--out', out, ...(family === 'llama' ? ['--kv-heads', '2'] : []));
    t.match(init.stdout, new RegExp(`wrote .*${family}: ${family}, 2 layers, hidden 32`));
    const { stdout } = await quartet('generate', '--model', out, '--prompt-ids', '5,6,7', '--max-new-tokens', '4', '--no-eos', '--json');
    const res = JSON.parse(stdout) as { choices: { token_ids: number[]; logprobs: { token_logprobs: number[] } }[] };
    const model = loadModel(out);
    const r = generate(model, Int32Array.from([5, 6, 7]), null, 1, 3, { maxNewTokens: 4, eosTokenId: null, logprobs: true });
    t.same(res.choices[0].token_ids, Array.from(r.sequences.subarray(3)), `${family}: CLI ids equal the library's`);
    t.same(res.choices[0].logprobs.token_logprobs, Array.from(r.logprobs!), `${family}: CLI log-probs equal the library's`);
    model.dispose();
  }
  const text = await quartet('generate', '--model', join(dir, 'gpt2'), '--prompt', 'Hello there', '--prompt', 'A', '--max-new-tokens', '3');
  t.equal(text.stdout.trim().split('\n').length, 2, 'one line per prompt');
  const help = await quartet('init-model', '--help');
  t.match(help.stdout, /Usage: npx quartet init-model/);
  await t.rejects(quartet('init-model', '--family', 'bloom', '--layers', '1', '--hidden', '8', '--heads', '2', '--vocab', '300', '--out', join(dir, 'x')), /model type 'bloom' is not supported/);
  await t.rejects(quartet('generate', '--model', join(dir, 'gpt2'), '--prompt-ids', '1,x'), /--prompt-ids '1,x' has NaN/);
  await t.rejects(quartet('generate', '--model', join(dir, 'gpt2'), '--bogus'), /Unknown option '--bogus'/);
});
