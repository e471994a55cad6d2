/**
 * Statement binding for Coq: a job names theorems and the statements they must have, and this
 * checks, in the check container, that each named constant proves exactly its statement. What the
 * source could bend is kept out:
 *  - each statement is elaborated by coqc with the standard library alone (`Proofpod.Goal_<n>`,
 *    in a directory of ours, under a root no project may bind), so no notation, coercion, scope or
 *    plugin of the source reaches it;
 *  - the binding `Definition bind : Proofpod.Goal_<n>.goal` is filled with `exact_no_check @name`,
 *    so no elaboration of the source's (coercions, implicit arguments, unification hints) stands
 *    between the constant and the statement: the kernel alone decides, by conversion, at Qed;
 *  - coqchk then re-checks every binding with the development, and the audit reads its summary.
 * The development's modules are loaded from the staged build outputs (regular `.vo` files only),
 * so a module that declares an ML module finds none to load, and fails to bind.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Goal } from '../contract/evidence.js';

export interface GoalResult {
  name: string;
  statement: string;
  result: 'proved' | 'failed';
  reason: string | null;
}

interface Ran {
  exitCode: number | null;
  output: string;
  spawnError?: string;
}

export interface BindGoals {
  goals: readonly Goal[];
  /** The load path of the development over the staged build outputs (e.g. `-Q <dir> Top`). */
  loadPath: readonly string[];
  /** A directory of ours for the statements and bindings. */
  goalsDir: string;
  run: (argv: string[], cwd: string) => Promise<Ran>;
}

/** The first error coqc printed, on one line and bounded. */
function firstError(output: string): string {
  const at = output.indexOf('Error:');
  const text = at < 0 ? output : output.slice(at);
  return text.replace(/\s+/g, ' ').trim().slice(0, 500) || 'no message';
}

/**
 * Binds every goal. Returns each goal's result, and the coqchk command that re-checks the bindings
 * that held (the caller runs it, with the audit), or undefined when none held.
 */
export async function bindGoals(job: BindGoals): Promise<{ results: GoalResult[]; recheck: string[] | undefined }> {
  await mkdir(job.goalsDir, { recursive: true });
  const ours = ['-Q', job.goalsDir, 'Proofpod'];
  const results: GoalResult[] = [];
  const bound: string[] = [];
  for (const [i, goal] of job.goals.entries()) {
    const n = i + 1;
    const failed = (reason: string) => results.push({ ...goal, result: 'failed', reason });
    // The statement is one term (the API refuses sentence ends and comments), parenthesised.
    await writeFile(path.join(job.goalsDir, `Goal_${n}.v`), `Definition goal : Prop := (${goal.statement}).\n`);
    const elaborated = await job.run(['coqc', ...ours, `Goal_${n}.v`], job.goalsDir);
    if (elaborated.spawnError || elaborated.exitCode !== 0) {
      failed(`the statement does not elaborate with the standard library alone: ${elaborated.spawnError ?? firstError(elaborated.output)}`);
      continue;
    }
    const module = goal.name.split('.').slice(0, -1).join('.');
    await writeFile(
      path.join(job.goalsDir, `Bind_${n}.v`),
      [
        `Require Proofpod.Goal_${n}.`,
        `Require ${module}.`,
        `Definition bind : Proofpod.Goal_${n}.goal.`,
        `Proof. exact_no_check (@${goal.name}). Qed.`,
        '',
      ].join('\n'),
    );
    const binding = await job.run(['coqc', ...job.loadPath, ...ours, `Bind_${n}.v`], job.goalsDir);
    if (binding.spawnError || binding.exitCode !== 0) {
      failed(`${goal.name} is missing or does not have the goal's type: ${binding.spawnError ?? firstError(binding.output)}`);
      continue;
    }
    results.push({ ...goal, result: 'proved', reason: null });
    bound.push(`Proofpod.Bind_${n}`);
  }
  return { results, recheck: bound.length > 0 ? ['coqchk', '-silent', '-o', ...job.loadPath, ...ours, ...bound] : undefined };
}
