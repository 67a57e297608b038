import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/util/paths.js';

t.test('repoRoot holds package.json', async (t) => {
  t.ok(existsSync(join(repoRoot, 'package.json')));
});
