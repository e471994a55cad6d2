/**
 * A scheduler process in miniature, for the local-substrate restart test: it starts one attempt,
 * prints `running` once the prover runs, and waits to be killed with SIGKILL, as a crash would.
 * Plain JavaScript on the built dist/ (npm test builds it first): Node 20 runs no TypeScript.
 */
import { parseConfig } from '../../dist/scheduler/config.js';
import { LocalSubstrate } from '../../dist/scheduler/substrate/local/local-substrate.js';

const input = JSON.parse(process.argv[2] ?? '{}');
const quiet = { child: () => quiet, warn() {}, info() {}, error() {}, debug() {} };
const substrate = new LocalSubstrate({
  config: parseConfig(input.config),
  stateDir: input.stateDir,
  programsRoot: input.programsRoot,
  log: quiet,
});
await substrate.start({ ...input.launch, deadlineAt: new Date(input.launch.deadlineAt) });
for (;;) {
  const status = await substrate.observe(input.launch.name);
  if (status?.phase === 'running') {
    process.stdout.write('running\n');
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 25));
}
setInterval(() => {}, 60_000);
