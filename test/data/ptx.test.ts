import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/defaults.js';
import { dataContext } from '../../src/data/datasets.js';
import { loadPtxBlocks } from '../../src/data/ptx.js';
import { sftBatch } from '../../src/data/batches.js';
import { sequence } from '../../src/data/examples.js';
import { QTokenizer } from '../../src/models/tokenizer.js';
import { repoRoot } from '../../src/util/paths.js';

const TOK = join(repoRoot, 'test/fixtures/data/tokenizer');

t.test('ptx: documents joined by end-of-text, cut into full blocks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-ptx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.txt'), 'It is lovely and bright.');
  writeFileSync(join(dir, 'b.jsonl'), '{"text": "I really enjoy it."}\n\n{"text": "What a wonderful thing."}\n{"nope": 1}\n');
  const c = defaultConfig();
  c.outputDir = dir;
  c.data = { ...c.data, ptxPaths: [join(dir, 'a.txt'), join(dir, 'b.jsonl')], maxPromptLen: 3, maxAnswerLen: 2, onBadRow: 'skip' };
  const tok = QTokenizer.load(TOK);
  const eos = tok.eosId!;
  const want = [
    ...tok.encode('It is lovely and bright.', { addSpecialTokens: false }), eos,
    ...tok.encode('I really enjoy it.', { addSpecialTokens: false }), eos,
    ...tok.encode('What a wonderful thing.', { addSpecialTokens: false }), eos,
  ];
  const { blocks, blockLen, skipped } = await loadPtxBlocks(dataContext(c, TOK));
  t.equal(blockLen, 5);
  t.equal(blocks.seqs.n, Math.floor(want.length / 5));
  t.same(Array.from(blocks.seqs.ids), want.slice(0, blocks.seqs.n * 5));
  t.same(skipped.map((s) => s.replace(dir, 'DIR')), ["DIR/b.jsonl:4: expected an object with a string 'text'"]);
  const b = sftBatch(blocks, [1], tok.padId, false);
  t.same(Array.from(b.ids), Array.from(sequence(blocks.seqs, 1)));
  t.same(Array.from(b.lossMask), [0, 1, 1, 1, 1]);
  c.data.onBadRow = 'error';
  await t.rejects(loadPtxBlocks(dataContext(c, TOK)), /b\.jsonl:4: expected an object with a string 'text'/);
});
