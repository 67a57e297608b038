// Which charts a run gets: a fixed list for the figures the pipeline is known
// to write (grouped so that a chart's series share a unit), then one chart for
// every other figure found, so nothing a run records goes unplotted. Charts
// without data are left out.
import type { ChartSpec } from './chart.js';
import { figuresOf, phases, seriesOf, type MetricRow, type Phase } from './metrics.js';

interface Group {
  phase: Phase;
  title: string;
  yLabel: string;
  figures: string[];
}

const groups: Group[] = [
  { phase: 'ppo', title: 'Learned reward (PPO)', yLabel: 'reward-model score', figures: ['reward'] },
  { phase: 'ppo', title: 'Gold score, AFINN (PPO)', yLabel: 'AFINN sum per answer', figures: ['gold'] },
  { phase: 'ppo', title: 'KL to the reference (PPO)', yLabel: 'nats per answer', figures: ['kl'] },
  { phase: 'ppo', title: 'PPO losses', yLabel: 'loss', figures: ['policy_loss', 'value_loss'] },
  { phase: 'ppo', title: 'Phase times per PPO step', yLabel: 'seconds', figures: ['time_generate', 'time_experience', 'time_train'] },
  { phase: 'ppo', title: 'Gold per word and repetition (PPO)', yLabel: 'per word / share', figures: ['gold_per_word', 'repetition'] },
  { phase: 'ppo', title: 'Answer length (PPO)', yLabel: 'tokens', figures: ['answer_len'] },
  { phase: 'ppo', title: 'Clip fractions (PPO)', yLabel: 'share clipped', figures: ['clip_frac', 'value_clip_frac'] },
  { phase: 'ppo', title: 'Throughput (PPO)', yLabel: 'tokens / s', figures: ['tokens_per_s'] },
  { phase: 'pretrain', title: 'Pre-training loss (step 0)', yLabel: 'cross-entropy (nats)', figures: ['loss'] },
  { phase: 'sft', title: 'SFT loss (step 1)', yLabel: 'cross-entropy (nats)', figures: ['loss'] },
  { phase: 'rm', title: 'Reward-model loss (step 2)', yLabel: '-log sigmoid(r_c - r_r)', figures: ['loss'] },
  { phase: 'rm', title: 'Reward-model accuracy (step 2)', yLabel: 'share chosen > rejected', figures: ['accuracy', 'eval_accuracy'] },
  { phase: 'dpo', title: 'DPO loss', yLabel: '-log sigmoid(beta * margin)', figures: ['loss', 'eval_loss'] },
  { phase: 'dpo', title: 'DPO implicit-reward accuracy', yLabel: 'share chosen > rejected', figures: ['accuracy', 'eval_accuracy'] },
];

const phaseNames: Record<Phase, string> = { pretrain: 'pre-training', sft: 'SFT', rm: 'reward model', ppo: 'PPO', dpo: 'DPO' };

/** Chart specs for the metrics rows, known groups first. */
export function chartsFor(rows: readonly MetricRow[]): ChartSpec[] {
  const specs: ChartSpec[] = [];
  const covered = new Set<string>();
  for (const g of groups) {
    const present = g.figures.filter((f) => seriesOf(rows, g.phase, f).some((p) => p[1] !== null));
    for (const f of g.figures) covered.add(`${g.phase}/${f}`);
    if (present.length === 0) continue;
    specs.push({
      title: g.title,
      xLabel: `${phaseNames[g.phase]} step`,
      yLabel: g.yLabel,
      series: present.map((f) => ({ name: f, points: seriesOf(rows, g.phase, f) })),
    });
  }
  for (const phase of phases) {
    for (const f of figuresOf(rows, phase)) {
      if (covered.has(`${phase}/${f}`)) continue;
      const points = seriesOf(rows, phase, f);
      if (!points.some((p) => p[1] !== null)) continue;
      specs.push({ title: `${f} (${phaseNames[phase]})`, xLabel: `${phaseNames[phase]} step`, yLabel: f, series: [{ name: f, points }] });
    }
  }
  return specs;
}
