/**
 * Our own reader of a Coq `_CoqProject` file, for the check: which physical directories the
 * project binds to which logical names (`-Q`, `-R`) and which `.v` files it lists. The build may run
 * anything the project says (its `-arg`s, `coq_makefile`, plugins): this reader runs nothing and
 * reads the committed file from the read-only source, so what the check loads under which name is
 * never the build's to decide. Unknown options are refused rather than skipped, and no binding may
 * claim the standard library's names.
 */
import path from 'node:path';

export class CoqProjectError extends Error {
  override readonly name = 'CoqProjectError';
}

export interface CoqProject {
  /** `-Q`/`-R` bindings in file order: physical directory (relative, normalised) → logical prefix. */
  bindings: { flag: '-Q' | '-R'; dir: string; logical: string }[];
  /** The `.v` files the project lists, relative to the project's directory. */
  files: string[];
}

/** Options whose operands matter only to the (untrusted) build; their arity. */
const buildOnly: Record<string, number> = {
  '-arg': 1,
  '-I': 1,
  '-docroot': 1,
  '-generate-meta-for-package': 1,
  '-native-compiler': 1,
  '-o': 1,
};

/** Logical roots the image's libraries (and the goals' statements) own; a project binding them would pass its files off as theirs. */
const reservedRoots = new Set(['Coq', 'Corelib', 'Stdlib', 'Ltac2', 'Proofpod']);

const identifier = /^[A-Za-z_\u00C0-\uFFFF][A-Za-z0-9_'\u00C0-\uFFFF]*$/u;

/** coq_makefile's lexing: whitespace-separated words, `#` to the end of the line, `"…"` as one word. */
export function tokens(text: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new CoqProjectError('_CoqProject has an unterminated quoted word');
      words.push(text.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && !/\s/.test(text[j]!) && text[j] !== '#') j++;
      words.push(text.slice(i, j));
      i = j;
    }
  }
  return words;
}

const shown = (word: string) => JSON.stringify(word.slice(0, 200));

/** A relative path inside the project, normalised; refused otherwise. */
function inside(word: string, what: string): string {
  const normal = path.posix.normalize(word);
  if (word === '' || word.includes('\0') || path.posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../')) {
    throw new CoqProjectError(`_CoqProject: ${what} ${shown(word)} is not a path inside the project`);
  }
  return normal === '.' ? '.' : normal.replace(/\/$/, '');
}

export function parseCoqProject(text: string): CoqProject {
  const words = tokens(text);
  const project: CoqProject = { bindings: [], files: [] };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '-Q' || word === '-R') {
      const [dir, logical] = [words[i + 1], words[i + 2]];
      if (dir === undefined || logical === undefined)
        throw new CoqProjectError(`_CoqProject: ${word} needs a directory and a logical name`);
      if (!logical.split('.').every((part) => identifier.test(part)))
        throw new CoqProjectError(`_CoqProject: ${shown(logical)} is not a logical name`);
      if (reservedRoots.has(logical.split('.')[0]!))
        throw new CoqProjectError(`_CoqProject: ${word} ${dir} ${logical} binds a name of the standard library`);
      project.bindings.push({ flag: word, dir: inside(dir, 'directory'), logical });
      i += 2;
    } else if (Object.hasOwn(buildOnly, word)) {
      if (words[i + buildOnly[word]!] === undefined) throw new CoqProjectError(`_CoqProject: ${word} needs an operand`);
      i += buildOnly[word]!;
    } else if (word.startsWith('-')) {
      throw new CoqProjectError(`_CoqProject: unknown option ${shown(word)}`);
    } else if (word.endsWith('.v')) {
      project.files.push(inside(word, 'file'));
    } else if (!/\.(mlg|ml|mli|mllib|mlpack)$/.test(word)) {
      throw new CoqProjectError(`_CoqProject: ${shown(word)} is neither an option nor a source file`);
    }
  }
  if (project.bindings.length === 0) throw new CoqProjectError('_CoqProject binds no directory to a logical name (-Q or -R)');
  return project;
}

/**
 * The logical name of a `.v` file of the project: the longest binding whose directory holds it,
 * then the rest of its path. `-Q` binds only the directory's own subtree to the prefix, as `-R` does;
 * the difference is in how Require finds names, which the loader, not this mapping, decides.
 */
export function logicalName(project: CoqProject, file: string): string {
  const normal = inside(file, 'file');
  const under = (dir: string) => dir === '.' || normal.startsWith(`${dir}/`);
  const binding = project.bindings.filter((b) => under(b.dir)).sort((a, b) => b.dir.length - a.dir.length)[0];
  if (!binding) throw new CoqProjectError(`${shown(file)} is in no directory the project binds to a logical name`);
  const rest = (binding.dir === '.' ? normal : normal.slice(binding.dir.length + 1)).replace(/\.v$/, '');
  const parts = rest.split('/');
  if (!parts.every((p) => identifier.test(p))) throw new CoqProjectError(`${shown(file)} has no valid logical name`);
  return [binding.logical, ...parts].join('.');
}

/** The load path flags for coqc and coqchk, with each directory under `root`. */
export function loadPath(project: CoqProject, root: string): string[] {
  return project.bindings.flatMap((b) => [b.flag, path.join(root, b.dir), b.logical]);
}
