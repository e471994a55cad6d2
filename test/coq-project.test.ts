import { describe, expect, it } from 'vitest';
import { CoqProjectError, loadPath, logicalName, parseCoqProject, tokens } from '../task-pod/coq-project.js';

describe('the _CoqProject reader', () => {
  it('reads bindings and files, skipping what only the build uses', () => {
    const project = parseCoqProject(
      '# a comment\n-R theories MyLib -Q "src dir" Other\n-arg -w -arg -notation-overridden\n-I plugin\ntheories/A.v theories/Sub/B.v plugin/p.mlg\n',
    );
    expect(project).toEqual({
      bindings: [
        { flag: '-R', dir: 'theories', logical: 'MyLib' },
        { flag: '-Q', dir: 'src dir', logical: 'Other' },
      ],
      files: ['theories/A.v', 'theories/Sub/B.v'],
    });
    expect(loadPath(project, '.')).toEqual(['-R', 'theories', 'MyLib', '-Q', 'src dir', 'Other']);
  });

  it.each([
    ['theories/A.v', 'MyLib.A'],
    ['theories/Sub/B.v', 'MyLib.Sub.B'],
    ['theories/deep/C.v', 'Deep.C'],
    ['./theories/A.v', 'MyLib.A'],
  ])('names %s %s (the longest binding wins)', (file, logical) => {
    const project = parseCoqProject('-Q theories MyLib -Q theories/deep Deep');
    expect(logicalName(project, file)).toBe(logical);
  });

  it.each([
    ['a binding of the standard library', '-Q theories Coq', '_CoqProject: -Q theories Coq binds a name of the standard library'],
    ['a binding under it', '-R . Stdlib.Extra', '_CoqProject: -R . Stdlib.Extra binds a name of the standard library'],
    [
      "a binding of the goals' root (a module named like the challenge)",
      '-Q theories Proofpod',
      '_CoqProject: -Q theories Proofpod binds a name of the standard library',
    ],
    ['a directory outside the project', '-Q ../elsewhere X', '_CoqProject: directory "../elsewhere" is not a path inside the project'],
    ['an absolute directory', '-Q /usr/lib/coq X', '_CoqProject: directory "/usr/lib/coq" is not a path inside the project'],
    ['a bad logical name', '-Q theories My-Lib', '_CoqProject: "My-Lib" is not a logical name'],
    ['an unknown option', '-Q theories X -f other/_CoqProject', '_CoqProject: unknown option "-f"'],
    ['a missing operand', '-Q theories', '_CoqProject: -Q needs a directory and a logical name'],
    ['no binding', 'A.v', '_CoqProject binds no directory to a logical name (-Q or -R)'],
    ['a word that is no source', '-Q . X README.md', '_CoqProject: "README.md" is neither an option nor a source file'],
    ['an unterminated quote', '-Q "theories X', '_CoqProject has an unterminated quoted word'],
  ])('refuses %s', (_name, text, message) => {
    expect(() => parseCoqProject(text)).toThrow(new CoqProjectError(message));
  });

  it('refuses a target no binding covers', () => {
    expect(() => logicalName(parseCoqProject('-Q theories X'), 'other/A.v')).toThrow(CoqProjectError);
  });

  it('lexes as coq_makefile does', () => {
    expect(tokens('a  b#c d\n"e f" g')).toEqual(['a', 'b', 'e f', 'g']);
  });
});
