import t from 'tap';
import { formatDuration, printAbove, Progress } from '../../src/util/progress.js';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => out.push(s) } };
}

t.test('not a TTY: one plain line every 25%, then a final line', async (t) => {
  const { out, stream } = sink(false);
  let now = 0;
  const p = new Progress({ total: 100, label: 'tokenising', unit: 'rows', stream, everyPercent: 25, now: () => now });
  for (let i = 0; i < 100; i++) {
    now += 100; // 10 rows/s
    p.tick(1);
  }
  t.same(out, [
    'tokenising: 25% 25/100 10.0 rows/s ETA 0:08\n',
    'tokenising: 50% 50/100 10.0 rows/s ETA 0:05\n',
    'tokenising: 75% 75/100 10.0 rows/s ETA 0:03\n',
    'tokenising: 100/100 in 0:10 (10.0 rows/s)\n',
  ]);
  p.tick(5);
  t.equal(out.length, 4, 'nothing after the end');
});

t.test('TTY: redraws in place, throttled, with bar, rate and ETA', async (t) => {
  const { out, stream } = sink(true);
  let now = 0;
  const p = new Progress({ total: 4, label: 'ppo', unit: 'steps', stream, redrawMs: 1000, now: () => now });
  now = 500; p.tick(1, 'loss 0.5');
  now = 800; p.tick(1); // within 1 s of the last draw: not drawn
  now = 2000; p.tick(1);
  t.equal(out.length, 2);
  t.equal(out[0], '\r\x1b[2Kppo [######..................] 25% 1/4 2.00 steps/s ETA 0:02 loss 0.5');
  t.match(out[1], /^\r\x1b\[2Kppo \[#{18}\.{6}\] 75% 3\/4 1\.50 steps\/s ETA 0:01$/);
  p.finish('stopped');
  t.equal(out[2], '\r\x1b[2Kppo: 3/4 in 0:02 (1.50 steps/s) stopped\n', 'an early finish says how far it got');
});

t.test('durations', async (t) => {
  t.equal(formatDuration(5), '0:05');
  t.equal(formatDuration(65), '1:05');
  t.equal(formatDuration(3725), '1:02:05');
  t.equal(formatDuration(Infinity), '?');
  t.throws(() => new Progress({ total: -1, label: 'x' }), /total must be >= 0/);
});

t.test('printAbove: a log line while a bar is drawn goes above it, never on its line', async (t) => {
  const { out, stream } = sink(true);
  let now = 0;
  const p = new Progress({ total: 4, label: 'sft', unit: 'steps', stream, redrawMs: 0, now: () => now });
  now = 1000;
  p.tick(1, 'loss 3.0064');
  const log: string[] = [];
  printAbove('sft step 1/4: loss 2.928', { write: (s: string) => { log.push(s); out.push(s); } });
  const text = out.join('');
  t.match(text, /loss 3\.0064\r\x1b\[2Ksft step 1\/4: loss 2\.928\n\[?/, 'the bar is wiped before the line');
  t.ok(text.endsWith('sft step 1/4: loss 2.928\n' + text.slice(text.lastIndexOf('\n') + 1)), 'the bar is drawn again after the line');
  t.match(text.slice(text.lastIndexOf('\n') + 1), /^sft \[######/, 'redrawn below the log line');
  p.finish();
  const before = out.length;
  printAbove('after the bar', stream);
  t.same(out.slice(before), ['after the bar\n'], 'no bar to wipe once it is finished');
});

t.test('printAbove without a bar: just the line', async (t) => {
  const { out, stream } = sink(false);
  printAbove('plain', stream);
  t.same(out, ['plain\n']);
});
