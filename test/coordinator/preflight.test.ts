// The check of a whole run before anything trains (src/coordinator/preflight.ts):
// model folders of every step, what each step needs from the ones before it,
// and prompt + answer lengths against every model's positions.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, type Config } from '../../src/config/defaults.js';
import { keysSet } from '../../src/config/load.js';
import { preflight, PreflightError } from '../../src/coordinator/preflight.js';
import { initModelFolder } from '../../src/models/init.js';

const root = mkdtempSync(join(tmpdir(), 'quartet-preflight-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const small = join(root, 'small'), big = join(root, 'big');
initModelFolder(small, { modelType: 'gpt2', layers: 1, hidden: 32, heads: 4, vocab: 300, maxPositions: 128, seed: 1 });
initModelFolder(big, { modelType: 'gpt2', layers: 1, hidden: 32, heads: 4, vocab: 300, maxPositions: 1024, seed: 2 });
const data = join(root, 'd.jsonl');
writeFileSync(data, '{"prompt": "p", "chosen": "a", "rejected": "b"}\n');
const none = { done: [], outputs: {} };

function config(values: { actor?: string; reward?: string; steps?: Config['steps'] } = {}): Config {
  const c = defaultConfig();
  c.actor.model = values.actor ?? null;
  c.reward.model = values.reward ?? null;
  c.steps = values.steps ?? ['sft', 'rm', 'ppo'];
  c.data.paths = [data];
  return c;
}

t.test('defaults the user did not set shrink to fit the smallest model, with a note', async (t) => {
  const c = config({ actor: small, reward: big });
  const r = preflight(c, none, new Set());
  t.equal(r.config.data.maxPromptLen + r.config.data.maxAnswerLen, 128);
  t.equal(r.config.data.maxPromptLen + r.config.ppo.maxNewTokens, 128);
  t.equal(r.config.data.maxPromptLen, 64, 'half each: 256/256 -> 64/64');
  t.match(r.notes.join('\n'), /ppo\.maxNewTokens 256 -> 64 .*128 positions of actor\.model '.*small' \(gpt2\)/);
  t.equal(c.ppo.maxNewTokens, 256, 'the input config is left as it was');
  t.same(preflight(config({ actor: big, reward: big }), none, new Set()).notes, [], 'nothing to fit on a 1024-position model');
});

t.test('a length the user set that does not fit is an error naming the key, the model and its positions', async (t) => {
  const c = config({ actor: small, reward: big });
  c.data.maxPromptLen = 28;
  c.data.maxAnswerLen = 64;
  t.throws(() => preflight(c, none, new Set(['ppo.maxNewTokens', 'data.maxPromptLen', 'data.maxAnswerLen'])),
    { message: /data\.maxPromptLen = 28 \+ ppo\.maxNewTokens = 256 = 284 tokens exceed the 128 positions of actor\.model '.*small' \(gpt2\); lower ppo\.maxNewTokens/ });
  const r = preflight(c, none, new Set(['data.maxPromptLen', 'data.maxAnswerLen']));
  t.equal(r.config.ppo.maxNewTokens, 100, 'only the unset key shrinks: 128 - 28');
  t.throws(() => preflight(c, none, undefined), PreflightError, 'no explicit set: every key counts as set');
});

t.test('model folders and what each step needs from the ones before', async (t) => {
  const missing = join(root, 'nope');
  t.throws(() => preflight(config({ actor: small, reward: missing }), none, new Set()), { message: `rm: reward.model = '${missing}' does not exist` });
  t.throws(() => preflight(config({ reward: big, steps: ['ppo'] }), none, new Set()), { message: /ppo: actor\.model is not set; give the SFT model \(--actor-model DIR\) or run sft before it/ });
  const ok = preflight(config({ actor: small, reward: big }), none, new Set());
  t.ok(ok, 'sft feeds ppo its actor and rm its reward model');
  const cmd = config({ actor: small, steps: ['ppo'] });
  cmd.reward.kind = 'command';
  cmd.reward.command = ['python3', 'r.py'];
  t.throws(() => preflight(cmd, none, new Set()), { message: /critic\.model is not set, and reward\.kind 'command' gives no reward model/ });
  cmd.ppo.algorithm = 'grpo';
  t.ok(preflight(cmd, none, new Set()), 'grpo needs no critic');
  const earlier = preflight(config({ steps: ['ppo'] }), { done: ['sft', 'rm'], outputs: { sft: small, rm: big } }, new Set());
  t.equal(earlier.config.ppo.maxNewTokens, 64, 'outputs of earlier commands in the run directory count, and are fitted to');
  const noData = config({ actor: small, steps: ['sft'] });
  noData.data.paths = [join(root, 'none.jsonl')];
  t.throws(() => preflight(noData, none, new Set()), { message: /data\.paths: '.*none\.jsonl' does not exist/ });
});

t.test('keysSet: the dotted keys a layer of values sets', async (t) => {
  t.same(keysSet({ ppo: { maxNewTokens: 8 }, data: { paths: ['a'] }, seed: 1 }), ['ppo.maxNewTokens', 'data.paths', 'seed']);
});
