// `quartet chat`: the streaming generation loop gives generate()'s tokens,
// the stream decoder releases exactly the final answer and stops at the next
// turn marker, the conversation keeps (and, to fit, leaves out) history, and
// the command answers a scripted conversation on a piped stdin with the
// history in its second prompt, `clear` and `quit`.
import t from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamDecoder, answerText, decodeIds, stopMarkers } from '../../src/chat/answer.js';
import { Conversation } from '../../src/chat/conversation.js';
import { trainingFormat } from '../../src/chat/run-format.js';
import { streamGenerate } from '../../src/chat/stream.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { generate } from '../../src/models/generate.js';
import { initModelFolder } from '../../src/models/init.js';
import { QTokenizer } from '../../src/models/tokenizer.js';
import { Rng } from '../../src/tensor/index.js';
import { repoRoot } from '../../src/util/paths.js';

const root = mkdtempSync(join(tmpdir(), 'quartet-chat-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const gpt2Dir = join(root, 'gpt2');
initModelFolder(gpt2Dir, { modelType: 'gpt2', layers: 2, hidden: 32, heads: 4, vocab: 400, maxPositions: 256, seed: 3 });
const tok = QTokenizer.load(gpt2Dir);
const EOT = '<|endoftext|>';
const TEMPLATE = 'Human: {prompt} Assistant:';
const markers = stopMarkers(TEMPLATE, EOT);

t.test('streamGenerate gives the tokens of generate(), greedy and sampled, gpt2 and llama', (t) => {
  const llamaDir = join(root, 'llama');
  initModelFolder(llamaDir, { modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, vocab: 300, maxPositions: 64, seed: 5 });
  for (const dir of [gpt2Dir, llamaDir]) {
    const model = loadModel(dir);
    const prompt = [5, 60, 7, 200, 9];
    const cases = [{}, { temperature: 1.3, seed: 11 }, { topK: 20, seed: 2 }, { topP: 0.8, temperature: 0.9, seed: 4 }];
    for (const c of cases) {
      const n = 12;
      const ref = generate(model, Int32Array.from(prompt), null, 1, prompt.length, { maxNewTokens: n, eosTokenId: null, ...c });
      const seen: number[] = [];
      const out = streamGenerate(model, prompt, { maxNewTokens: n, eosTokenIds: [], ...c }, new Rng(c.seed ?? 0), (id) => (seen.push(id), true));
      t.same(out, Array.from(ref.sequences.subarray(prompt.length)), `${dir.endsWith('llama') ? 'llama' : 'gpt2'} ${JSON.stringify(c)}: same tokens`);
      t.same(seen, out, 'each token was handed over as it was made');
    }
    // A callback returning false stops at once; an EOS stops after being handed over.
    const three = streamGenerate(model, prompt, { maxNewTokens: 10, eosTokenIds: [] }, new Rng(0), () => false);
    t.equal(three.length, 1);
    const greedy = streamGenerate(model, prompt, { maxNewTokens: 10, eosTokenIds: [] }, new Rng(0), () => true);
    const stopped = streamGenerate(model, prompt, { maxNewTokens: 10, eosTokenIds: [greedy[2]] }, new Rng(0), () => true);
    t.same(stopped, greedy.slice(0, greedy.indexOf(greedy[2]) + 1), 'stops at the first EOS, which is returned');
    t.throws(() => streamGenerate(model, prompt, { maxNewTokens: model.cfg.maxPositions, eosTokenIds: [] }, new Rng(0), () => true), /exceed the model's \d+ positions/);
    model.dispose();
  }
  t.end();
});

t.test('the stream decoder releases the final answer and stops at the next turn', (t) => {
  const eos = new Set([tok.eosId!]);
  const run = (ids: number[]) => {
    const d = new StreamDecoder(tok, markers, eos);
    const pieces: string[] = [];
    let done = false;
    for (const id of ids) {
      const r = d.push(id);
      pieces.push(r.piece);
      if (r.done) {
        done = true;
        break;
      }
    }
    pieces.push(d.rest());
    return { pieces, done, answer: d.answer() };
  };
  const a = run(tok.encode(' Hello world. Human: and more', { addSpecialTokens: false }));
  t.equal(a.pieces.join(''), 'Hello world.', 'text up to the marker, leading and trailing space dropped');
  t.equal(a.answer, 'Hello world.');
  t.ok(a.done, 'the marker ends the answer');
  t.ok(a.pieces.every((_, i) => 'Hello world.'.startsWith(a.pieces.slice(0, i + 1).join(''))), 'what was printed is always a prefix of the answer (no start of the marker)');
  const b = run([...tok.encode(' café ☃ ok', { addSpecialTokens: false }), tok.eosId!, 65]);
  t.equal(b.pieces.join(''), 'café ☃ ok');
  t.ok(b.done, 'EOS ends the answer');
  t.notOk(b.pieces.some((p) => p.includes('\uFFFD')), 'unfinished UTF-8 bytes are held back');
  const c = run(tok.encode(' open end', { addSpecialTokens: false }));
  t.equal(c.pieces.join(''), 'open end');
  t.notOk(c.done);
  t.equal(run([tok.eosId!]).answer, '', 'an empty answer decodes to the empty string');
  t.equal(decodeIds(tok, []), '');
  t.same(answerText(' a Human: b', markers), { text: 'a', stopped: true });
  t.end();
});

t.test('the conversation formats history as training does and leaves out the oldest rounds to fit', (t) => {
  const conv = new Conversation({ template: TEMPLATE, eot: EOT });
  conv.add('Hi', 'Hello.');
  conv.add('  How are you? ', 'Fine');
  const text = 'Human: Hi Assistant: Hello.<|endoftext|> Human: How are you? Assistant: Fine<|endoftext|> Human: And you? Assistant:';
  t.equal(conv.promptText('And you?'), text);
  const whole = conv.fit(tok, 'And you?', 1000);
  t.same(whole.ids, tok.encode(text, { addSpecialTokens: false }));
  t.equal(whole.roundsLeftOut, 0);
  t.ok(whole.ids.includes(tok.eosId!), 'the end-of-conversation token is one token, as in training');
  const lastTwo = conv.promptText('And you?', 1);
  const n = tok.encode(lastTwo, { addSpecialTokens: false }).length;
  const fitted = conv.fit(tok, 'And you?', n);
  t.equal(fitted.roundsLeftOut, 1);
  t.equal(fitted.text, lastTwo);
  const cut = conv.fit(tok, 'And you?', 4);
  t.equal(cut.roundsLeftOut, 2);
  t.same(cut.ids, tok.encode('Human: And you? Assistant:', { addSpecialTokens: false }).slice(-4), 'tokens cut from the left');
  conv.clear();
  t.equal(conv.promptText('x'), 'Human: x Assistant:');
  t.throws(() => new Conversation({ template: 'no slot', eot: EOT }), /'\{prompt\}' exactly once/);
  t.end();
});

/** Runs `quartet chat` with `input` on its stdin; resolves to its exit code and output. */
function chat(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'quartet.js'), 'chat', ...args], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    let stdout = '', stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

t.test('quartet chat answers a scripted conversation through a pipe', async (t) => {
  const N = 6;
  const r = await chat(['--model', gpt2Dir, '--max-new-tokens', String(N), '--show-prompt'],
    'What is a frog?\n\nAnd a toad?\nclear\nHello again\nquit\nnever asked\n');
  t.equal(r.code, 0, r.stderr);
  // The reference: greedy generate() on prompts written out here, history by hand.
  const model = loadModel(gpt2Dir);
  t.teardown(() => model.dispose());
  const answer = (prompt: string) => {
    const ids = tok.encode(prompt, { addSpecialTokens: false });
    const g = generate(model, Int32Array.from(ids), null, 1, ids.length, { maxNewTokens: N, eosTokenId: tok.eosId });
    const out = Array.from(g.sequences.subarray(ids.length)).filter((id) => id !== tok.eosId);
    return answerText(decodeIds(tok, out), markers).text;
  };
  const p1 = 'Human: What is a frog? Assistant:';
  const a1 = answer(p1);
  const p2 = `${p1} ${a1}${EOT} Human: And a toad? Assistant:`;
  const a2 = answer(p2);
  const p3 = 'Human: Hello again Assistant:';
  const a3 = answer(p3);
  t.equal(r.stdout, [
    'Human: What is a frog?', `Assistant: ${a1}`, 'Human: And a toad?', `Assistant: ${a2}`,
    '(history cleared)', 'Human: Hello again', `Assistant: ${a3}`, '',
  ].join('\n'), 'the transcript holds the reference answers; the blank line and the line after quit are not questions');
  const prompts = r.stderr.split('\n').filter((l) => l.startsWith('[prompt] ')).map((l) => JSON.parse(l.slice(9)) as string);
  t.same(prompts, [p1, p2, p3], 'the second prompt holds the first round; clear empties the history');
});

t.test('quartet chat ends at the end of its input, and checks its flags', async (t) => {
  const eof = await chat(['--model', gpt2Dir, '--max-new-tokens', '2'], 'Hi');
  t.equal(eof.code, 0, eof.stderr);
  t.match(eof.stdout, /^Human: Hi\nAssistant: .*\n$/s);
  const help = await chat(['--help'], '');
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: npx quartet chat --model DIR/);
  const none = await chat([], '');
  t.equal(none.code, 2);
  t.match(none.stderr, /--model is required/);
  const bad = await chat(['--model', gpt2Dir, '--top-p', '2'], 'Hi\n');
  t.equal(bad.code, 1);
  t.match(bad.stderr, /--top-p must be in \(0, 1\], got '2'/);
  const long = await chat(['--model', gpt2Dir, '--max-new-tokens', '256'], 'Hi\n');
  t.match(long.stderr, /--max-new-tokens 256 leaves no room for a prompt in the model's 256 positions; give at most 255/);
  const missing = await chat(['--model', join(root, 'nowhere')], 'Hi\n');
  t.equal(missing.code, 1);
  t.match(missing.stderr, /chat: --model \S*nowhere does not exist/);
  const noTokenizer = join(root, 'no-tokenizer');
  mkdirSync(noTokenizer, { recursive: true });
  writeFileSync(join(noTokenizer, 'config.json'), '{}');
  t.match((await chat(['--model', noTokenizer], 'Hi\n')).stderr, /holds no tokenizer\.json/);
});

t.test('quartet chat fits its default answer length to a small model (the demo\'s 64 positions)', async (t) => {
  const small = join(root, 'small');
  initModelFolder(small, { modelType: 'gpt2', layers: 1, hidden: 32, heads: 4, vocab: 400, maxPositions: 64, seed: 9 });
  const r = await chat(['--model', small], 'Hi\n');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /answers of at most 32 tokens, half the model's 64 positions/);
  t.match(r.stdout, /^Human: Hi\nAssistant: /);
});

t.test('a model inside a run directory is prompted in the run\'s format', async (t) => {
  const run = join(root, 'run');
  const actor = join(run, 'ppo', 'actor');
  mkdirSync(join(run, 'ppo'), { recursive: true });
  cpSync(gpt2Dir, actor, { recursive: true });
  writeFileSync(join(run, 'config.json'), JSON.stringify({ seed: 1, data: { promptTemplate: 'User: {prompt}\nBot:', endOfConversationToken: '<|endoftext|>' } }));
  t.same(trainingFormat(actor), { format: { template: 'User: {prompt}\nBot:', eot: EOT }, source: join(run, 'config.json') });
  t.equal(trainingFormat(gpt2Dir).source, null, 'a folder outside a run gets the defaults');
  const r = await chat(['--model', actor, '--max-new-tokens', '2', '--show-prompt'], 'Hi\n');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, `(prompt format from ${join(run, 'config.json')})`);
  t.match(r.stderr, '[prompt] "User: Hi\\nBot:"');
  const flag = await chat(['--model', actor, '--max-new-tokens', '2', '--show-prompt', '--template', 'Q: {prompt} A:', '--eot', '<|endoftext|>'], 'Hi\n');
  t.match(flag.stderr, '[prompt] "Q: Hi A:"', 'flags win over the run');
});
