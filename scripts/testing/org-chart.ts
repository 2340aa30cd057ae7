// A company's org chart as Cedar JSON entities, for tests that load or decide
// with a realistic hierarchy: 1,000 groups in 5 levels (10, 40, 100, 250, 600),
// each in 1–3 groups of the level above, and `people` humans each in up to 3
// groups, mostly of the lowest level. Pseudo-random, the same every run.

export interface OrgChartOptions {
  /** The pseudo-random sequence's start (default 7). */
  seed?: number;
  /**
   * `full` (the default): groups named in an attribute, and each person an
   * email (some elsewhere) and sometimes the role ops; `minimal`: people's
   * attributes empty, to keep a large chart small.
   */
  attributes?: 'full' | 'minimal';
}

export function orgChart(people: number, options: OrgChartOptions = {}): unknown[] {
  let seed = options.seed ?? 7;
  const full = (options.attributes ?? 'full') === 'full';
  const pick = (n: number) => Math.floor((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 65_536) % n;
  const group = (id: string) => ({ type: 'Group', id });
  const levels: string[][] = [];
  const out: unknown[] = [];
  for (const [l, size] of [10, 40, 100, 250, 600].entries()) {
    const above = levels[l - 1] ?? [];
    levels.push(Array.from({ length: size }, (_, i) => `g${l}-${i}`));
    for (const id of levels[l]!) {
      const parents = (l === 0 ? [] : [...new Set(Array.from({ length: 1 + pick(3) }, () => above[pick(above.length)]!))]).map(group);
      out.push({ uid: group(id), ...(full ? { attrs: { name: id } } : {}), parents });
    }
  }
  const all = levels.flat();
  for (let h = 0; h < people; h++) {
    const groups = [...new Set([0, 1, 2].map(() => (pick(4) === 0 ? all[pick(all.length)]! : levels[4]![pick(600)]!)))];
    const attrs = full ? { email: `h${h}@${pick(5) === 0 ? 'elsewhere.example' : 'example.com'}`, roles: pick(6) === 0 ? ['ops'] : [] } : { email: '', roles: [] };
    out.push({ uid: { type: 'Human', id: `h${h}` }, attrs, parents: groups.map(group) });
  }
  return out;
}
