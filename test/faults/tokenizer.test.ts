// A bad tokenizer.json is a load error that names the file and what in it is
// wrong, never an error without the file, nor a tokenizer that encodes every
// text to nothing.
import t from 'tap';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QTokenizer } from '../../src/models/tokenizer.js';
import { repoRoot } from '../../src/util/paths.js';

const src = join(repoRoot, 'test', 'fixtures', 'data', 'tokenizer');
const dir = mkdtempSync(join(tmpdir(), 'q-tok-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
cpSync(src, dir, { recursive: true });
const file = join(dir, 'tokenizer.json');
const good = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8')) as Record<string, any>;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Writes tokenizer.json with `patch` applied and loads the folder. */
function load(patch: Record<string, unknown>): () => QTokenizer {
  writeFileSync(file, JSON.stringify({ ...good, ...patch }));
  return () => QTokenizer.load(dir);
}

t.test('the fixture itself loads', (t) => {
  t.ok(load({})().encode('hello').length > 0);
  t.end();
});

t.test('a bad model section names the file and the key', (t) => {
  const at = esc(file);
  t.throws(load({ model: undefined }), new RegExp(`tokenizer: ${at} has no 'model' section`));
  t.throws(load({ model: 'BPE' }), new RegExp(`tokenizer: ${at}: 'model' must be an object`));
  t.throws(load({ model: { ...good.model, type: 'Nope' } }), new RegExp(`tokenizer: ${at}: model\\.type "Nope" is not one of BPE`));
  t.throws(load({ model: { ...good.model, vocab: 3 } }), new RegExp(`tokenizer: ${at}: model\\.vocab of a BPE model must be an object of token -> id, got 3`));
  t.throws(load({ model: { ...good.model, vocab: { a: -1 } } }), new RegExp(`${at}: model\\.vocab must map tokens to non-negative integer ids`));
  t.throws(load({ model: { ...good.model, merges: ['zz qq'] } }), new RegExp(`${at}: model\\.merges\\[0\\] \\("zz qq"\\) uses 'zz', which is not in model\\.vocab`));
  t.throws(load({ model: { ...good.model, merges: 5 } }), new RegExp(`${at}: model\\.merges must be a list`));
  t.end();
});

t.test("the library's own errors get the file name too", (t) => {
  t.throws(load({ pre_tokenizer: { type: 'Bogus' } }), new RegExp(`tokenizer: ${esc(file)}: Unknown PreTokenizer type: Bogus`));
  t.throws(load({ normalizer: { type: 'Bogus' } }), new RegExp(`tokenizer: ${esc(file)}: Unknown Normalizer type: Bogus`));
  writeFileSync(file, '{"model": ');
  t.throws(() => QTokenizer.load(dir), new RegExp(`tokenizer: cannot parse ${esc(file)}`));
  t.end();
});
