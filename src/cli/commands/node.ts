// `quartet node --coordinator tcp://HOST:PORT --keys FILE [--name NAME]`:
// joins this machine to a run; the coordinator places roles on it by name.
import { hostname } from 'node:os';
import type { Command } from '../main.js';
import { readNodeKeys } from '../../runtime/curve.js';
import { runNode } from '../../runtime/remote-agent.js';

const USAGE = `Usage: npx quartet node --coordinator tcp://HOST:PORT --keys FILE [--name NAME] [--join-timeout SECONDS]

Joins this machine to a running coordinator. FILE is the run's node key file
(<runDir>/keys/node.json on the coordinator's machine: the coordinator's public
key and the key pair nodes present). NAME (default: the host name) is what the
plan's 'node' field names (e.g. --critic.node=NAME, or --actor.node=local,NAME
for one actor replica on each machine). Between the steps of a run (quartet
train) it rejoins the next step's coordinator at the same address; it stops
when the run ends or the coordinator is gone.`;

const command: Command = {
  summary: 'Join this machine to a run (roles placed on it are started here)',
  async run(argv) {
    const opts: Record<string, string> = {};
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (a === '--help' || a === '-h') {
        console.log(USAGE);
        return 0;
      }
      if (!['--coordinator', '--keys', '--name', '--join-timeout'].includes(a) || argv[i + 1] === undefined) {
        console.error(`quartet node: unknown option or missing value '${a}'\n\n${USAGE}`);
        return 2;
      }
      opts[a.slice(2)] = argv[++i];
    }
    if (!opts.coordinator || !/^tcp:\/\/[^:]+:\d+$/.test(opts.coordinator)) {
      console.error(`quartet node: --coordinator must be tcp://HOST:PORT\n\n${USAGE}`);
      return 2;
    }
    if (!opts.keys) {
      console.error(`quartet node: --keys FILE is required (the run's keys/node.json)\n\n${USAGE}`);
      return 2;
    }
    const name = opts.name ?? hostname().toLowerCase().replace(/[^a-z0-9_-]/g, '-').slice(0, 32);
    const joinTimeout = opts['join-timeout'] === undefined ? 30 : Number(opts['join-timeout']);
    if (!(joinTimeout > 0)) {
      console.error(`quartet node: --join-timeout must be a number of seconds > 0`);
      return 2;
    }
    return runNode({ coordinator: opts.coordinator, keys: readNodeKeys(opts.keys), name, joinTimeoutMs: joinTimeout * 1000 });
  },
};

export default command;
