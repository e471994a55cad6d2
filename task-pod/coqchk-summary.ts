/**
 * The audit of a Coq check: our own reader of coqchk's context summary (`coqchk -o`), which says
 * everything a checked development assumes. It fails closed: a section it does not know, a line it
 * does not recognise, a section missing or repeated, or anything but blank lines around the summary
 * is an error, never ignored — a new kind of assumption in a later coqchk must not pass unread.
 */
import type { Finding } from '../contract/evidence.js';

export class AuditError extends Error {
  override readonly name = 'AuditError';
}

type FindingKind = Finding['kind'];

/** The list sections of coqchk 8.16's summary, in order, and the kind of finding each entry is. */
const listSections: readonly { title: string; kind: FindingKind }[] = [
  { title: 'Axioms', kind: 'axiom' },
  { title: 'Constants/Inductives relying on type-in-type', kind: 'type-in-type' },
  { title: 'Constants/Inductives relying on unsafe (co)fixpoints', kind: 'unsafe-fixpoint' },
  { title: 'Inductives whose positivity is assumed', kind: 'assumed-positivity' },
];

const theories: Record<string, FindingKind | null> = {
  'Set is predicative': null,
  'Set is impredicative': 'impredicative-set',
};

/**
 * coqchk's warning that a file is found in two places of the load path, with the path it loaded
 * (8.16 wraps it over three or more lines, as long as the paths are); undefined when the lines at
 * `i` are not that warning.
 */
function ambiguousLoad(lines: readonly string[], i: number): { loaded: string; next: number } | undefined {
  if (!/^Warning: \S+\.vo has been found in/.test(lines[i] ?? '')) return undefined;
  const end = lines.slice(i, i + 12).findIndex((l) => l.trimEnd().endsWith('[ambiguous-file-name,filesystem]'));
  if (end < 0) return undefined;
  const text = lines
    .slice(i, i + end + 1)
    .map((l) => l.trim())
    .join(' ');
  const loaded = /^Warning: \S+\.vo has been found in \[ [^\]]+ \]; loading (\S+\.vo) \[ambiguous-file-name,filesystem\]$/.exec(text)?.[1];
  return loaded ? { loaded, next: i + end + 1 } : undefined;
}

/** A qualified Coq name as coqchk prints it: no spaces, no control characters. */
const entry = /^ {4}([^\s\p{Cc}]+)$/u;

/** Shown in an error: bounded, one line, never the whole output. */
const shown = (line: string) => JSON.stringify(line.slice(0, 120));

/**
 * The findings of one summary — of one target, or of all (`target` null) — in the order coqchk lists them. Every entry is a finding:
 * whether an axiom is allowed is the lane's allow-list's to say, not this reader's.
 */
export function parseCoqchkSummary(
  output: string,
  target: string | null,
  options: { checkedRoot?: string | readonly string[] } = {},
): Omit<Finding, 'allowed'>[] {
  const lines = output.split('\n').map((l) => l.replace(/\r$/, ''));
  const blank = (l: string) => l.trim() === '';
  let i = 0;
  for (;;) {
    while (i < lines.length && blank(lines[i]!)) i++;
    const ambiguous = ambiguousLoad(lines, i);
    if (!ambiguous) break;
    // A module found both where the check staged it and in the image (a project named like one of
    // the image's libraries): coqchk says which it loaded, and it must be the staged one.
    const roots = typeof options.checkedRoot === 'string' ? [options.checkedRoot] : (options.checkedRoot ?? []);
    if (!roots.some((root) => ambiguous.loaded.startsWith(`${root}/`))) {
      throw new AuditError(`coqchk loaded ${shown(ambiguous.loaded)}, not the build output it was given`);
    }
    i = ambiguous.next;
  }
  if (lines[i] !== 'CONTEXT SUMMARY' || lines[i + 1] !== '===============') {
    throw new AuditError(`coqchk printed ${i < lines.length ? shown(lines[i]!) : 'nothing'} where its context summary should begin`);
  }
  i += 2;
  const findings: Omit<Finding, 'allowed'>[] = [];
  const seen = new Set<string>();
  let current: FindingKind | undefined;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (blank(line)) continue;
    const theory = /^\* Theory: (.*)$/.exec(line);
    if (theory) {
      const kind = theories[theory[1]!];
      if (kind === undefined) throw new AuditError(`unknown theory line in coqchk's summary: ${shown(line)}`);
      if (seen.has('Theory')) throw new AuditError("coqchk's summary names the theory twice");
      seen.add('Theory');
      if (kind) findings.push({ kind, name: 'Set', target });
      current = undefined;
      continue;
    }
    const section = /^\* (.+?):( <none>)?$/.exec(line);
    if (section) {
      const known = listSections.find((s) => s.title === section[1]);
      if (!known) throw new AuditError(`unknown section in coqchk's summary: ${shown(line)}`);
      if (seen.has(known.title)) throw new AuditError(`coqchk's summary has the section ${shown(known.title)} twice`);
      seen.add(known.title);
      current = section[2] ? undefined : known.kind;
      continue;
    }
    if (line.startsWith('* ')) throw new AuditError(`unknown section in coqchk's summary: ${shown(line)}`);
    const name = entry.exec(line)?.[1];
    if (name !== undefined && current !== undefined) {
      findings.push({ kind: current, name, target });
      continue;
    }
    throw new AuditError(`unrecognised line in coqchk's summary: ${shown(line)}`);
  }
  const missing = ['Theory', ...listSections.map((s) => s.title)].filter((t) => !seen.has(t));
  if (missing.length > 0) throw new AuditError(`coqchk's summary lacks ${missing.map(shown).join(', ')}`);
  return findings;
}
