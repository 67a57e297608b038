import t from 'tap';
import { detokenize, documentText, loadBrown, parseBrownFile, sentencesOf, splitCorpus, stripTag } from '../../src/demo/corpus.js';

t.test('tags are cut at the last slash', async (t) => {
  t.equal(stripTag('1/2/cd', 'x'), '1/2');
  t.equal(stripTag("Atlanta's/np$", 'x'), "Atlanta's");
  t.equal(stripTag('//in', 'x'), '/');
  t.throws(() => stripTag('notag', 'ca01:3'), /ca01:3: token 'notag' has no word\/tag form/);
});

t.test('punctuation and quotes are spaced as in print', async (t) => {
  t.equal(detokenize(['``', 'Only', 'a', 'handful', "''", ',', 'the', 'jury', 'said', '.']), '"Only a handful", the jury said.');
  t.equal(detokenize(['It', 'cost', '$', '5', '(', 'or', 'less', ')', ';', 'fine', '?']), 'It cost $5 (or less); fine?');
  t.equal(detokenize(['He', 'said', "'", 'no', "'", 'twice', '--', 'loudly', '!']), "He said 'no' twice -- loudly!");
  t.equal(detokenize(['Ivan', 'Allen', 'Jr.', '.']), 'Ivan Allen Jr.', 'no double period after an abbreviation');
});

t.test('paragraphs, continuation lines and headlines', async (t) => {
  const file = [
    '',
    '\tThe/at jury/nn said/vbd ./.',
    'It/pps agreed/vbd ./.',
    '',
    'Merger/nn-hl proposed/vbn-hl',
    'However/wrb ,/, it/pps waited/vbd ./.',
    '\tNew/jj paragraph/nn ./.',
  ].join('\n');
  t.same(parseBrownFile(file, 'test'), [['The jury said.', 'It agreed.'], ['However, it waited.'], ['New paragraph.']]);
  t.throws(() => parseBrownFile('\tgood/jj bad\n', 'cz99'), /cz99:1: token 'bad'/);
});

t.test('the whole corpus loads as clean text, and splits by seed', async (t) => {
  const docs = loadBrown();
  t.equal(docs.length, 500);
  t.equal(new Set(docs.map((d) => d.category)).size, 15, 'all 15 genres');
  const text = docs.map(documentText).join('\n\n');
  t.ok(text.length > 5_000_000, `about 6 MB of text (${text.length} chars)`);
  // The source itself has a few oddities (inch marks written '', numbers
  // missing before a comma), so these count rather than demand zero.
  const count = (re: RegExp) => [...text.matchAll(re)].length;
  t.equal(count(/[a-z]\/(nn|vb|vbd|at|in|jj)\b/g), 0, 'no part-of-speech tags left');
  t.equal(count(/``/g), 0, 'opening quotes are plain');
  t.ok(count(/''(?!")/g) < 10, "closing quotes are plain (the source writes inches as ''\")");
  t.ok(count(/ [,.;:?!]/g) < 100, 'hardly any space before punctuation');
  t.match(documentText(docs[0]), /^The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced "no evidence" that any irregularities took place\.\n\n/);
  const sentences = sentencesOf(docs);
  t.ok(sentences.length > 50_000, `${sentences.length} sentences`);

  const a = splitCorpus(docs, { seed: 1, heldOutFraction: 0.1 });
  const b = splitCorpus(docs, { seed: 1, heldOutFraction: 0.1 });
  const c = splitCorpus(docs, { seed: 2, heldOutFraction: 0.1 });
  t.same(a.heldOut.map((d) => d.id), b.heldOut.map((d) => d.id), 'same seed, same split');
  t.not(a.heldOut.map((d) => d.id).join(), c.heldOut.map((d) => d.id).join(), 'another seed, another split');
  t.equal(a.pretrain.length + a.heldOut.length, 500);
  t.ok(a.heldOut.length >= 45 && a.heldOut.length <= 55, `about a tenth held out (${a.heldOut.length})`);
  const held = new Set(a.heldOut.map((d) => d.id));
  t.notOk(a.pretrain.some((d) => held.has(d.id)), 'the parts are disjoint');
  t.equal(new Set(a.heldOut.map((d) => d.category)).size, 15, 'every genre is held out in part');
  t.throws(() => splitCorpus(docs, { seed: 1, heldOutFraction: 1 }), /heldOutFraction must be in \(0, 1\)/);
});
