// `quartet report RUN_DIR`: (re)writes a run directory's report.html and
// report.svg from its metrics.jsonl and summary.json, e.g. after a run that
// stopped early or to look at a run copied from another machine.
import { parseArgs } from 'node:util';
import type { Command } from '../main.js';
import { writeReport } from '../../report/report.js';

const USAGE = `Usage: npx quartet report RUN_DIR [--title TEXT]

Reads RUN_DIR/metrics.jsonl and RUN_DIR/summary.json and writes RUN_DIR/report.html
(summary, charts, sample answers) and RUN_DIR/report.svg (the charts alone).
Prints the path of report.html, then on stderr each line or field it had to skip
as file:line: problem. Either input may be missing; what is there is shown.

  --title TEXT   the page title (default 'Quartet run report')`;

const command: Command = {
  summary: "Write a run directory's report.html from its metrics and summary",
  async run(argv) {
    let values: { title?: string; help?: boolean };
    let positionals: string[];
    try {
      ({ values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        options: { title: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      }));
    } catch (err) {
      console.error(`quartet report: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (positionals.length !== 1) {
      console.error(`quartet report: give exactly one RUN_DIR, got ${positionals.length}\n\n${USAGE}`);
      return 2;
    }
    const result = writeReport(positionals[0], { title: values.title });
    console.log(result.html);
    if (result.problems.length > 0) {
      console.error(`${result.problems.length} problem(s) met while reading the run (skipped):`);
      for (const p of result.problems) console.error(`  ${p}`);
    }
    return 0;
  },
};

export default command;
