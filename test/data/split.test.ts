// The seeded permutation and step split reproduce numpy's RandomState shuffle
// and DeepSpeed-Chat's get_raw_dataset_split_index exactly (fixtures written by
// scripts/fixtures/data/make_fixtures.py with numpy).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Mt19937, parseSplit, shuffleIndex, splitBounds, splitIndex } from '../../src/data/split.js';
import { repoRoot } from '../../src/util/paths.js';

const fx = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/data/shuffle.json'), 'utf8')) as {
  shuffles: { seed: number; n: number; head: number[]; sum_i_times_x: number }[];
  splits: { seed: number; split: string; n: number; parts: number[][] }[];
};

t.test('MT19937 matches the reference output for init_genrand(5489)', async (t) => {
  // The first outputs of the standard MT19937 with its default seed (Matsumoto & Nishimura).
  const rng = new Mt19937(5489);
  t.same([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()], [3499211612, 581869302, 3890346734]);
});

t.test('shuffleIndex equals numpy RandomState(seed).shuffle(arange(n))', async (t) => {
  for (const s of fx.shuffles) {
    const idx = shuffleIndex(s.seed, s.n);
    t.same(Array.from(idx.subarray(0, 20)), s.head, `seed ${s.seed}, n ${s.n}: first 20`);
    let sum = 0n;
    idx.forEach((x, i) => (sum += BigInt(i) * BigInt(x)));
    t.equal(Number(sum % 2n ** 31n), s.sum_i_times_x, `seed ${s.seed}, n ${s.n}: checksum of the whole permutation`);
  }
});

t.test('splitIndex equals DeepSpeed-Chat get_raw_dataset_split_index', async (t) => {
  for (const s of fx.splits) {
    const shares = parseSplit(s.split);
    s.parts.forEach((part, i) => t.same(splitIndex(s.seed, shares, i, s.n), part, `seed ${s.seed} split ${s.split} n ${s.n} part ${i}`));
    const all = s.parts.flat().sort((a, b) => a - b);
    t.same(all, Array.from({ length: s.n }, (_, i) => i), 'the parts cover every row once');
  }
  // rounding: 37 rows by 2,4,4 -> round(7.4)=7, round(14.8)=15, round(14.8)=15 -> 37, no correction
  t.same(splitBounds([2, 4, 4], 37), [0, 7, 22, 37]);
  // 5 rows: round(1.0)=1, round(2.0)=2, round(2.0)=2
  t.same(splitBounds([2, 4, 4], 5), [0, 1, 3, 5]);
  // Python rounds halves to even: 3 rows by 1,1 -> round(1.5)=2, round(1.5)=2 -> 4, all bounds shift by 1
  t.same(splitBounds([1, 1], 3), [0, 1, 3]);
  t.throws(() => parseSplit('2,x,4'), /data.split: expected comma-separated non-negative shares/);
});
