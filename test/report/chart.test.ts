import t from 'tap';
import { lineChart, movingAverage, niceTicks, tickLabels } from '../../src/report/chart.js';

t.test('nice ticks cover the range with round steps', async (t) => {
  t.same(niceTicks(0, 100, 5), [0, 20, 40, 60, 80, 100]);
  t.same(niceTicks(0.13, 0.92, 4), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  t.same(niceTicks(-0.42, 0.81, 5), [-0.5, -0.25, 0, 0.25, 0.5, 0.75, 1]);
  t.same(niceTicks(3, 3, 4), [2.6, 2.8, 3, 3.2, 3.4], 'a flat series gets a range around it');
  t.same(niceTicks(0, 0, 2), [-1, 0, 1]);
  t.throws(() => niceTicks(0, Infinity), /niceTicks: range \[0, Infinity\] is not finite/);
  t.same(niceTicks(4, 5, 5, true), [4, 5], 'integer steps for step numbers');
  t.same(tickLabels([0, 0.25, 0.5, 0.75]), ['0.00', '0.25', '0.50', '0.75']);
  t.same(tickLabels([15200, 15250, 15300]), ['15.20k', '15.25k', '15.30k'], 'neighbours never print alike');
  t.same(tickLabels([0, 20000, 40000]), ['0', '20k', '40k']);
  t.same(tickLabels([0, 50, 100]), ['0', '50', '100']);
  t.same(tickLabels([0.0026, 0.0028, 0.003]), ['0.0026', '0.0028', '0.0030']);
  t.same(tickLabels([0, 0.00002, 0.00004]), ['0', '2e-5', '4e-5']);
});

t.test('points land where the axes say', async (t) => {
  const svg = lineChart({ title: 'T', xLabel: 'step', yLabel: 'y', series: [{ name: 'a', points: [[0, 0], [10, 100]] }], width: 560, height: 300 });
  // plot box: left 64, right 560-16, top 36, bottom 300-46; ticks 0..10 and 0..100 end at the corners.
  t.match(svg, /<polyline fill="none" stroke="#1f77b4" stroke-width="1.8" points="64\.0,254\.0 544\.0,36\.0"\/>/);
  t.match(svg, />step<\/text>/);
  t.notMatch(svg, /NaN/);
  const gap = lineChart({ title: 'G', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[0, 1], [1, 2], [2, null], [3, 2], [4, 1]] }, { name: 'b', points: [[0, 0]] }] });
  t.equal((gap.match(/<polyline/g) ?? []).length, 2, 'a null breaks the line');
  t.match(gap, /<text x="[\d.]+" y="40">b<\/text>/, 'legend names every series');
  t.match(lineChart({ title: 'E', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [[0, null]] }] }), />no data</);
});

t.test('long series get a moving average over the faint raw line', async (t) => {
  t.same(movingAverage([[0, 1], [1, 2], [2, 6], [3, 3]], 3), [[0, 1.5], [1, 3], [2, 11 / 3], [3, 4.5]]);
  const points = Array.from({ length: 100 }, (_, i): [number, number] => [i, i % 2]);
  const svg = lineChart({ title: 'N', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points }] });
  t.match(svg, /stroke-opacity="0.35"/);
  t.match(svg, /class="smooth"/);
  t.match(svg, /bold: mean of 7 points/);
  t.notMatch(svg, /<circle/, 'no dots on a long series');
});
