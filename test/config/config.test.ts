import t, { type Test } from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultConfig, schema } from '../../src/config/defaults.js';
import { deepspeedChatFlags, flagAliases, parseArgs } from '../../src/config/cli.js';
import { loadConfig } from '../../src/config/load.js';
import { configHelp, formatConfig, formatConfigChanges, saveResolvedConfig } from '../../src/config/print.js';
import { placementPlan, rolesForStep } from '../../src/config/plan.js';
import { planPlacement } from '../../src/runtime/placement.js';
import { ConfigError, resolveConfig } from '../../src/config/validate.js';
import { flattenSchema } from '../../src/config/schema.js';
import { repoRoot } from '../../src/util/paths.js';

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function problemsOf(fn: () => unknown): { key: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('defaults follow DeepSpeed-Chat', async (t) => {
  const c = defaultConfig();
  t.equal(c.ppo.klCtl, 0.1);
  t.equal(c.ppo.clipRewardValue, 5);
  t.equal(c.ppo.clipRange, 0.2);
  t.equal(c.ppo.clipRangeValue, 0.2);
  t.equal(c.ppo.gamma, 1.0);
  t.equal(c.ppo.lambda, 0.95);
  t.equal(c.data.split, '2,4,4');
  t.equal(c.data.endOfConversationToken, '<|endoftext|>');
  t.equal(c.actor.lr, 9.65e-6);
  t.equal(c.critic.lr, 5e-6);
  t.same(c.steps, ['sft', 'rm', 'ppo']);
  // a fresh copy each time: mutating one does not touch the next
  c.actor.devices.push('cuda:0');
  t.same(defaultConfig().actor.devices, ['cpu']);
});

t.test('every key has a doc', async (t) => {
  for (const [key, f] of flattenSchema(schema)) t.ok(f.doc.length > 10, key);
});

t.test('unknown key names the full path and suggests the nearest key', async (t) => {
  const p = problemsOf(() => resolveConfig([{ source: 'x.json', values: { actor: { lr: 1e-4, weightdecay: 0.1 } } }]));
  t.equal(p.length, 1);
  t.equal(p[0].key, 'actor.weightdecay');
  t.match(p[0].message, /unknown key \(did you mean 'actor.weightDecay'\?\)/);
  const q = problemsOf(() => resolveConfig([{ source: 'x.json', values: { ppo: { kl_ctl: 0.2 } } }]));
  t.match(q[0].message, /did you mean 'ppo.klCtl'/);
  const r = problemsOf(() => resolveConfig([{ source: 'x.json', values: { zzzzzzzzzzzz: 1 } }]));
  t.equal(r[0].message, 'unknown key');
});

t.test('wrong types name key, expected and got; all problems are reported at once', async (t) => {
  const p = problemsOf(() => resolveConfig([{ source: 'x.json', values: {
    actor: { lr: '1e-4', replicas: 1.5, devices: ['gpu0'] },
    ppo: { algorithm: 'dpo', topP: 2 },
    data: { paths: 'a.jsonl' },
    critic: 3,
  } }]));
  const byKey = Object.fromEntries(p.map((x) => [x.key, x.message]));
  t.equal(byKey['actor.lr'], 'expected number, got the string "1e-4"');
  t.equal(byKey['actor.replicas'], 'expected integer, got number 1.5');
  t.match(byKey['actor.devices'], /item 0: expected a device such as/);
  t.equal(byKey['ppo.algorithm'], "expected 'ppo' | 'grpo' | 'rloo', got the string \"dpo\"");
  t.equal(byKey['ppo.topP'], 'must be <= 1, got 2');
  t.match(byKey['data.paths'], /expected list of strings/);
  t.match(byKey['critic'], /expected an object of keys, got number 3/);
  t.equal(p.length, 7);
});

t.test('cross-field rules', async (t) => {
  let p = problemsOf(() => resolveConfig([{ source: 'x', values: { actor: { replicas: 2, devices: ['cuda:0', 'cuda:1', 'cuda:2'] } } }]));
  t.match(p[0], { key: 'actor.devices', message: /3 entries for actor.replicas = 2: give one entry shared by every replica, or one per replica/ });
  const ok = resolveConfig([{ source: 'x', values: { actor: { replicas: 2, devices: ['cuda:0+cpu:0-1', 'cuda:1,2+cpu:2,3'] } } }]);
  t.same(ok.actor.devices, ['cuda:0+cpu:0-1', 'cuda:1,2+cpu:2,3'], 'device entries in the runtime placement syntax');
  p = problemsOf(() => resolveConfig([{ source: 'x', values: { reward: { kind: 'command' } } }]));
  t.match(p[0], { key: 'reward.command' });
  p = problemsOf(() => resolveConfig([{ source: 'x', values: { data: { paths: ['a.jsonl'], split: '10,0,0' } } }]));
  t.same(p.map((x) => x.key), ['data.split', 'data.split']);
  // a split that starves no requested step is fine
  const c = resolveConfig([{ source: 'x', values: { steps: ['sft'], data: { paths: ['a.jsonl'], split: '10,0,0' } } }]);
  t.same(c.steps, ['sft']);
  // A training batch must give every replica a row; checked only for the steps that run.
  p = problemsOf(() => resolveConfig([{ source: 'x', values: { sft: { batchSize: 2 }, rm: { batchSize: 3 }, ppo: { trainBatchSize: 3 }, actor: { replicas: 3 }, reward: { replicas: 4 }, critic: { replicas: 2 } } }]));
  t.same(p.map((x) => x.key), ['sft.batchSize', 'rm.batchSize'], 'ppo.trainBatchSize 3 covers 3 actor and 2 critic replicas');
  t.match(p[0].message, /sft\.batchSize = 2 is smaller than actor\.replicas = 3/);
  t.match(p[1].message, /rm\.batchSize = 3 is smaller than reward\.replicas = 4/);
  p = problemsOf(() => resolveConfig([{ source: 'x', values: { ppo: { trainBatchSize: 2 }, critic: { replicas: 3 } } }]));
  t.same(p.map((x) => x.key), ['ppo.trainBatchSize']);
  t.match(p[0].message, /ppo\.trainBatchSize = 2 is smaller than critic\.replicas = 3/);
  const grpo = resolveConfig([{ source: 'x', values: { ppo: { trainBatchSize: 2, algorithm: 'grpo' }, critic: { replicas: 3 } } }]);
  t.equal(grpo.ppo.trainBatchSize, 2, 'grpo trains no critic');
  const sftOnly = resolveConfig([{ source: 'x', values: { steps: ['sft'], rm: { batchSize: 1 }, reward: { replicas: 2 } } }]);
  t.same(sftOnly.steps, ['sft'], 'a step that does not run is not checked');
});

t.test('command line: both forms, types by schema, booleans alone, aliases', async (t) => {
  const a = parseArgs(['--actor.lr=1e-4', '--critic.lr', '2e-5', '--ppo.overlap', '--actor.devices=cuda:0,cuda:1',
    '--steps', 'sft,rm', '--actor-model', 'm/opt', 'extra', '--reference.model=null', '--help']);
  t.same(a.overrides, {
    actor: { lr: 1e-4, devices: ['cuda:0', 'cuda:1'], model: 'm/opt' },
    critic: { lr: 2e-5 }, ppo: { overlap: true }, steps: ['sft', 'rm'], reference: { model: null },
  });
  t.same(a.rest, ['extra', '--help']);
  t.same(parseArgs(['--resume', 'false']).overrides, { resume: false });
  t.same(parseArgs(['--data.paths=["a,b.jsonl"]']).overrides, { data: { paths: ['a,b.jsonl'] } });
  t.same(parseArgs(['--ppo.klCtl', '-0.5']).overrides, { ppo: { klCtl: -0.5 } }, 'a negative number is a value, not a flag');

  t.match(problemsOf(() => parseArgs(['--actor.lora', '3']))[0], { key: '--actor.lora', message: 'is a group of keys; set one of them, e.g. --actor.lora.dim' });
  const bad = problemsOf(() => parseArgs(['--actor.lr=fast', '--actor.lrr', '3', '--critic.lr']));
  t.same(bad.map((x) => x.key), ['--actor.lr', '--actor.lrr', '--critic.lr']);
  t.equal(bad[0].message, "expected a number, got 'fast'");
  t.match(bad[1].message, /did you mean '--actor.lr'/);
  t.equal(bad[2].message, 'needs a value');
});

t.test('precedence: defaults < file < command line', async (t) => {
  const dir = tmp(t);
  const file = join(dir, 'run.json');
  writeFileSync(file, JSON.stringify({ actor: { lr: 1e-3, warmup: 5 }, ppo: { klCtl: 0.05 } }));
  const { config, files } = loadConfig(['--config', file, '--actor.lr', '7e-5']);
  t.same(files, [file]);
  t.equal(config.actor.lr, 7e-5, 'command line wins over the file');
  t.equal(config.actor.warmup, 5, 'file wins over the defaults');
  t.equal(config.ppo.klCtl, 0.05);
  t.equal(config.critic.lr, 5e-6, 'untouched keys keep their defaults');
  // a wrong type in the file names the file
  writeFileSync(file, JSON.stringify({ ppo: { gamma: 'one' } }));
  t.throws(() => loadConfig(['--config', file]), { message: new RegExp(`${file.replace(/[.]/g, '\\.')}[^]*ppo.gamma: expected number`) });
  // a JSON syntax error names file, line and column
  writeFileSync(file, '{\n  "seed": 1,\n  "ppo": { "gamma": 1, }\n}');
  t.throws(() => loadConfig(['--config', file]), { message: /run\.json:3:\d+: invalid JSON/ });
});

t.test('shipped configs resolve', async (t) => {
  for (const name of readdirSync(join(repoRoot, 'configs')).filter((f) => f.endsWith('.json'))) {
    const { config } = loadConfig(['--config', name.replace(/\.json$/, '')]);
    t.ok(config.outputDir, name);
  }
});

t.test('resolved config is printed and saved, and reloads to the same config', async (t) => {
  const dir = tmp(t);
  const { config } = loadConfig(['--actor.lr=3e-4', '--data.maxPromptLen=64']);
  const text = formatConfig(config);
  t.match(text, /^\* actor\.lr = 0\.0003$/m);
  t.match(text, /^  critic\.lr = 0\.000005$/m);
  const path = saveResolvedConfig(dir, config);
  t.same(JSON.parse(readFileSync(path, 'utf8')), config);
  t.same(loadConfig(['--config', path]).config, config, 'a saved config is itself a valid config file');
  const help = configHelp();
  t.match(help, /--ppo\.klCtl <number>  \(default 0\.1\)/);
  t.match(help, /--reward\.kind <'model' \| 'command' \| 'http'>/);
});

t.test('placement plan per step', async (t) => {
  const { config } = loadConfig(['--actor.model=m/sft', '--reward.model=m/rm', '--actor.devices=cuda:0,cuda:1',
    '--actor.replicas=2', '--sft.lr=1e-3', '--actor.lr=1e-5']);
  t.same(rolesForStep(config, 'sft'), ['actor']);
  t.same(rolesForStep(config, 'rm'), ['reward']);
  t.same(rolesForStep(config, 'ppo'), ['actor', 'critic', 'reference', 'reward']);
  const sft = placementPlan(config, 'sft');
  t.same(Object.keys(sft), ['actor']);
  t.match(sft.actor, { replicas: 2, devices: ['cuda:0', 'cuda:1'], module: 'actors/actor.js', args: { model: 'm/sft', seed: config.seed, training: { lr: 1e-3, dropout: config.sft.dropout, lora: { dim: 0 } } } });
  t.same(Object.keys(sft.actor!.args!).sort(), ['ema', 'model', 'seed', 'training'], 'start-up args build the model; per-call knobs are not among them');
  t.same(Object.keys(sft.actor!.args!.training as object).sort(), ['dropout', 'gradientCheckpointing', 'lora', 'lr']);
  const ppo = placementPlan(config, 'ppo');
  t.match(ppo.actor!.args, { training: { lr: 1e-5 } }, 'PPO uses actor.lr, SFT uses sft.lr');
  t.equal(ppo.reference!.args!.model, 'm/sft', 'reference starts from the actor model');
  t.equal(ppo.critic!.args!.model, 'm/rm', 'critic starts from the reward model');
  t.same(ppo.critic!.restart, { maxRestarts: 3 });
  // the runtime's own checker accepts what the config layer makes
  const placed = planPlacement(ppo, [0, 1]);
  t.same(Object.keys(placed.roles), ['actor', 'critic', 'reference', 'reward']);
  t.same(placed.roles.actor.map((r) => r.cuda), [[0], [1]]);
  const pinned = loadConfig(['--config', 'tiny-e2e']).config;
  const tiny = planPlacement(placementPlan(pinned, 'ppo'), [0, 1]);
  t.same(tiny.roles.critic[0].cpus, [1]);
  t.equal(tiny.roles.critic[0].maxRestarts, 0);
  t.equal(placementPlan(pinned, 'ppo').critic!.args!.threads, 1, 'threads travel in args');
  // A group across machines: one node name per replica.
  t.throws(() => loadConfig(['--actor.replicas=2', '--actor.node=local,gpu-2']), /runtime\.listen: actor\.node = 'local,gpu-2' places replicas on other machines: set runtime\.listen/);
  t.throws(() => loadConfig(['--runtime.listen=tcp://0.0.0.0:*']), /runtime\.listen: must be tcp:\/\/HOST:PORT with a fixed port/);
  t.throws(() => loadConfig(['--runtime.listen=tcp://h:1', '--actor.node=a,b,c']), /actor\.node: 3 names for actor\.replicas = 1/);
  const spread = loadConfig(['--actor.replicas=2', '--actor.node=local,gpu-2', '--critic.node=gpu-2', '--runtime.listen=tcp://10.0.0.1:5555']).config;
  const sp = planPlacement(placementPlan(spread, 'ppo'), [0, 1]);
  t.same(sp.roles.actor.map((r) => r.node), ['local', 'gpu-2']);
  t.same(sp.roles.critic.map((r) => r.node), ['gpu-2']);

  const custom = loadConfig(['--reward.kind=command', '--reward.command=python3,score.py', '--ppo.algorithm=grpo']).config;
  const plan = placementPlan(custom, 'ppo');
  t.same(Object.keys(plan).sort(), ['actor', 'reference', 'reward'], 'grpo needs no critic');
  t.same(plan.reward!.command, ['python3', 'score.py']);
  t.equal(plan.reward!.module, undefined);

  // A custom scorer's process: the actor's tokenizer and the run directory in its args, and it starts there.
  const py = loadConfig(['--reward.kind=command', '--reward.command=python3,score.py', '--actor.model=m', '--critic.model=c', '--outputDir=runs/x']).config;
  const pyPlan = placementPlan(py, 'ppo');
  t.same(pyPlan.reward!.args, { tokenizer: resolve('m'), runDir: resolve('runs/x') });
  t.equal(pyPlan.reward!.cwd, resolve('runs/x'));
  t.same(placementPlan(py, 'rm').reward!.module, 'actors/reward.js', 'step 2 trains a reward model whatever scores PPO');
  const http = loadConfig(['--reward.kind=http', '--reward.url=http://127.0.0.1:9/score', '--reward.retries=4', '--critic.model=c']).config;
  const httpPlan = placementPlan(http, 'ppo');
  t.equal(httpPlan.reward!.module, 'actors/reward-http.js');
  t.same(httpPlan.reward!.args, { url: 'http://127.0.0.1:9/score', retries: 4, connectTimeoutMs: 5000, readTimeoutMs: 30_000, backoffMs: 500, maxConcurrency: 4, batchSize: 0 });
});

t.test('a custom scorer: what the other steps and keys must give it', async (t) => {
  const keys = (argv: string[]) => { try { loadConfig(argv); return []; } catch (e) { return (e as ConfigError).problems.map((p) => p.key); } };
  t.same(keys(['--steps=ppo', '--reward.kind=command', '--reward.command=x']), ['critic.model'], 'ppo with a command reward and no critic model');
  t.match(problemsOf(() => loadConfig(['--steps=ppo', '--reward.kind=http', '--reward.url=http://h/s']).config)[0].message, /critic\.model/);
  t.same(keys(['--steps=ppo', '--reward.kind=command', '--reward.command=x', '--critic.model=c']), []);
  t.same(keys(['--steps=ppo', '--reward.kind=command', '--reward.command=x', '--ppo.algorithm=grpo']), [], 'grpo has no critic');
  t.same(keys(['--steps=rm,ppo', '--reward.kind=command', '--reward.command=x']), [], 'an rm step before ppo makes the critic');
  t.same(keys(['--steps=ppo', '--reward.kind=http', '--critic.model=c']), ['reward.url']);
  t.same(keys(['--steps=ppo', '--reward.kind=http', '--reward.url=ftp://h/x', '--critic.model=c']), ['reward.url']);

  // reward.command in a config file: its scripts are found beside the file, wherever quartet starts.
  const dir = tmp(t);
  writeFileSync(join(dir, 'score.py'), '');
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ reward: { kind: 'command', command: ['python3', 'score.py', 'lib/x.py', '--k', '/abs/y.py'] } }));
  t.same(loadConfig(['--config', join(dir, 'run.json')]).config.reward.command, ['python3', join(dir, 'score.py'), join(dir, 'lib/x.py'), '--k', '/abs/y.py']);
  t.same(loadConfig(['--config', join(dir, 'run.json'), '--reward.command=python3,score.py']).config.reward.command, ['python3', 'score.py'], 'the command line is taken as given');
});

t.test("DeepSpeed-Chat's flag names get a hint to the Quartet key, and every key a hint names exists", async (t) => {
  t.throws(() => parseArgs(['--actor_model_name_or_path', 'x']), { message: /--actor_model_name_or_path: is DeepSpeed-Chat's flag; Quartet's is --actor-model \(docs\/deepspeed-chat\.md\)/ });
  const keys = new Set(flattenSchema(schema).map(([k]) => k));
  for (const [ds, hint] of Object.entries(deepspeedChatFlags)) {
    for (const [, name] of hint.matchAll(/--([\w.-]+)/g)) {
      if (name.startsWith('ROLE.')) continue;
      t.ok(keys.has(flagAliases[name] ?? name), `${ds}: --${name} is a Quartet key`);
    }
  }
});

t.test('configHelp lists only the sections a command uses; formatConfigChanges only what differs', async (t) => {
  const sft = configHelp(['seed', 'actor.lora', 'sft']);
  t.match(sft, /--sft\.lr </);
  t.match(sft, /--actor\.lora\.dim </);
  t.notMatch(sft, /--ppo\.|--actor\.lr |--reward\./);
  t.match(configHelp(), /--ppo\.klCtl </);
  const c = defaultConfig();
  t.equal(formatConfigChanges(c), '  (all defaults)');
  c.ppo.klCtl = 0.2;
  c.data.paths = ['a.jsonl'];
  t.equal(formatConfigChanges(c), '  data.paths = ["a.jsonl"]\n  ppo.klCtl = 0.2');
});
