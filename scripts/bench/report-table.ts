/**
 * `renderTable`: the bench's one table — a row per figure, with its baseline and the ratio where the scenario has
 * one, and the issue's target next to it (✓/✗; a target is reported, never enforced).
 */

export interface Target {
  op: '>=' | '<=';
  value: number;
  /** What the target applies to: the gateway's figure (default) or the ratio to the baseline. */
  on?: 'value' | 'ratio';
}

export interface TableRow {
  scenario: string;
  metric: string;
  unit: string;
  /** The gateway's (Tollgate's) figure. */
  value: number;
  baseline?: number;
  /** value ÷ baseline, or a ratio the scenario computes otherwise (explained in docs/performance.md). */
  ratio?: number;
  target?: Target;
  /** Set by `judge`. */
  pass?: boolean;
}

/** Sets `pass` from the target (undefined without one; false when the figure is missing). */
export function judge(row: TableRow): TableRow {
  if (!row.target) return row;
  const subject = row.target.on === 'ratio' ? row.ratio : row.value;
  if (subject === undefined || !Number.isFinite(subject)) return { ...row, pass: false };
  return { ...row, pass: row.target.op === '>=' ? subject >= row.target.value : subject <= row.target.value };
}

export function formatNumber(value: number | undefined): string {
  if (value === undefined) return '';
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function targetText(target: Target | undefined): string {
  if (!target) return '';
  const op = target.op === '>=' ? '≥' : '≤';
  return `${target.on === 'ratio' ? 'ratio ' : ''}${op} ${formatNumber(target.value)}`;
}

export function renderTable(rows: readonly TableRow[]): string {
  const header = ['scenario', 'metric', 'unit', 'tollgate', 'baseline', 'ratio', 'target', ''];
  const body = rows.map((row) => [
    row.scenario,
    row.metric,
    row.unit,
    formatNumber(row.value),
    formatNumber(row.baseline),
    row.ratio === undefined ? '' : Number.isFinite(row.ratio) ? row.ratio.toFixed(2) : 'n/a',
    targetText(row.target),
    row.pass === undefined ? '' : row.pass ? '✓' : '✗',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => cells[i]!.length)));
  const numeric = new Set([3, 4, 5]);
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (numeric.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`, ...body.map(line)].join('\n');
}
