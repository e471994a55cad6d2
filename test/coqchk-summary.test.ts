import { describe, expect, it } from 'vitest';
import { AuditError, parseCoqchkSummary } from '../task-pod/coqchk-summary.js';

/** coqchk 8.16's context summary, as `coqchk -silent -o` prints it, with these sections changed. */
function summary(sections: Partial<Record<'theory' | 'axioms' | 'tit' | 'fix' | 'pos', string>> = {}): string {
  return [
    '',
    'CONTEXT SUMMARY',
    '===============',
    '',
    sections.theory ?? '* Theory: Set is predicative',
    '  ',
    sections.axioms ?? '* Axioms: <none>',
    '  ',
    sections.tit ?? '* Constants/Inductives relying on type-in-type: <none>',
    '  ',
    sections.fix ?? '* Constants/Inductives relying on unsafe (co)fixpoints: <none>',
    '  ',
    sections.pos ?? '* Inductives whose positivity is assumed: <none>',
    '  ',
    '',
  ].join('\n');
}

describe('the coqchk summary reader', () => {
  it.each([
    ['nothing assumed', summary(), []],
    [
      'an axiom and an admitted lemma',
      summary({ axioms: '* Axioms:\n    Coq.Logic.Classical_Prop.classic\n    Top.A.later' }),
      [
        ['axiom', 'Coq.Logic.Classical_Prop.classic'],
        ['axiom', 'Top.A.later'],
      ],
    ],
    ['type-in-type', summary({ tit: '* Constants/Inductives relying on type-in-type:\n    Top.A.T' }), [['type-in-type', 'Top.A.T']]],
    [
      'an unsafe fixpoint',
      summary({ fix: '* Constants/Inductives relying on unsafe (co)fixpoints:\n    Top.A.loop' }),
      [['unsafe-fixpoint', 'Top.A.loop']],
    ],
    [
      'assumed positivity',
      summary({ pos: '* Inductives whose positivity is assumed:\n    Top.A.bad' }),
      [['assumed-positivity', 'Top.A.bad']],
    ],
    ['an impredicative Set', summary({ theory: '* Theory: Set is impredicative' }), [['impredicative-set', 'Set']]],
  ])('%s', (_name, output, expected) => {
    expect(parseCoqchkSummary(output, 'A.v').map((f) => [f.kind, f.name])).toEqual(expected);
  });

  const ambiguous = (loaded: string) =>
    `Warning: base.vo has been found in\n         [ /stage/theories ; /usr/lib/ocaml/coq/user-contrib/stdpp ];\n         loading ${loaded} [ambiguous-file-name,filesystem]\n${summary()}`;

  it('accepts a module found twice when coqchk loaded the staged build output', () => {
    expect(parseCoqchkSummary(ambiguous('/stage/theories/base.vo'), null, { checkedRoot: '/stage' })).toEqual([]);
  });

  it('reads the warning however coqchk wraps it', () => {
    const wrapped = `Warning: base.vo has been found in\n[ /stage/a/very/long/path/theories ;\n/usr/lib/ocaml/coq/user-contrib/stdpp ];\nloading /stage/a/very/long/path/theories/base.vo\n[ambiguous-file-name,filesystem]\n${summary()}`;
    expect(parseCoqchkSummary(wrapped, null, { checkedRoot: '/stage' })).toEqual([]);
  });

  it('refuses a module coqchk loaded from the image instead of the build output', () => {
    expect(() => parseCoqchkSummary(ambiguous('/usr/lib/ocaml/coq/user-contrib/stdpp/base.vo'), null, { checkedRoot: '/stage' })).toThrow(
      new AuditError('coqchk loaded "/usr/lib/ocaml/coq/user-contrib/stdpp/base.vo", not the build output it was given'),
    );
  });

  it.each([
    ['no summary at all', '', 'coqchk printed nothing where its context summary should begin'],
    [
      'output before the summary',
      `Warning: something\n${summary()}`,
      'coqchk printed "Warning: something" where its context summary should begin',
    ],
    [
      'an unknown section',
      summary({ pos: '* Inductives whose positivity is assumed: <none>\n  \n* Rewrite rules: allowed' }),
      'unknown section in coqchk\'s summary: "* Rewrite rules: allowed"',
    ],
    [
      'an unknown theory',
      summary({ theory: '* Theory: Set is something else' }),
      'unknown theory line in coqchk\'s summary: "* Theory: Set is something else"',
    ],
    [
      'an entry with more than a name',
      summary({ axioms: '* Axioms:\n    Top.A.x : False' }),
      'unrecognised line in coqchk\'s summary: "    Top.A.x : False"',
    ],
    [
      'an entry outside a list',
      summary({ axioms: '* Axioms: <none>\n    Top.A.x' }),
      'unrecognised line in coqchk\'s summary: "    Top.A.x"',
    ],
    ['a missing section', summary({ fix: '' }), 'coqchk\'s summary lacks "Constants/Inductives relying on unsafe (co)fixpoints"'],
    [
      'a repeated section',
      summary({ pos: '* Inductives whose positivity is assumed: <none>\n* Axioms: <none>' }),
      'coqchk\'s summary has the section "Axioms" twice',
    ],
    ['text after the summary', `${summary()}trailing words`, 'unrecognised line in coqchk\'s summary: "trailing words"'],
  ])('fails closed on %s', (_name, output, message) => {
    expect(() => parseCoqchkSummary(output, 'A.v')).toThrow(new AuditError(message));
  });
});
