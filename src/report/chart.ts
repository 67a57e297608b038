// Line charts as standalone SVG text, for the run report: axes with "nice"
// ticks (1, 2, 5 x 10^k), axis labels, a legend, and dots where a series is
// short enough that lines alone would hide the points. No dependencies, so the
// page works offline and the SVG can be embedded or saved on its own.

export interface Series {
  name: string;
  /** [x, y] points; a null y leaves a gap in the line. */
  points: [number, number | null][];
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
}

export const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Escapes text for use inside XML/HTML elements and attributes. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** About `count` evenly spaced round values covering [lo, hi]; `integer` keeps the step a whole number (for steps). */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new Error(`niceTicks: range [${lo}, ${hi}] is not finite`);
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(lo / step + 1e-9) * step;
  // Ticks run from at or below lo to at or above hi, so every point is inside.
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    const v = Number((first + i * step).toPrecision(12));
    ticks.push(v);
    if (v >= hi - step * 1e-9 && ticks.length >= 2) break;
  }
  return ticks;
}

/** Digits after the decimal point in the shortest form of v. */
function decimals(v: number): number {
  const text = String(Number(v.toPrecision(12)));
  return text.includes('e') ? 12 : (text.split('.')[1] ?? '').length;
}

/**
 * Labels for evenly spaced ticks, all with the decimals their step needs, so
 * that neighbours never print alike: 0.25 0.5 0.75 -> "0.25" "0.50" "0.75";
 * large values in thousands (15.25k), tiny ones in exponent form.
 */
export function tickLabels(ticks: readonly number[]): string[] {
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  const top = Math.max(...ticks.map(Math.abs));
  if (top >= 1e4 && step >= 10) {
    const d = decimals(step / 1000);
    return ticks.map((v) => (v === 0 ? '0' : `${(v / 1000).toFixed(d)}k`));
  }
  if (top < 1e-3) return ticks.map((v) => (v === 0 ? '0' : v.toExponential(Math.max(0, decimals(step / Math.pow(10, Math.floor(Math.log10(top))))))));
  const d = decimals(step);
  return ticks.map((v) => v.toFixed(d));
}

/** Runs of consecutive numeric points; a null or non-finite y ends a run. */
function lineRuns(points: readonly [number, number | null][]): [number, number][][] {
  const runs: [number, number][][] = [[]];
  for (const [x, y] of points) {
    if (y === null || !Number.isFinite(y)) runs.push([]);
    else runs[runs.length - 1].push([x, y]);
  }
  return runs.filter((r) => r.length > 0);
}

/** Centred moving average over `window` (odd) points, narrower at the ends. */
export function movingAverage(points: readonly [number, number][], window: number): [number, number][] {
  const half = Math.floor(window / 2);
  return points.map(([x], i) => {
    const lo = Math.max(0, i - half), hi = Math.min(points.length, i + half + 1);
    let sum = 0;
    for (let j = lo; j < hi; j++) sum += points[j][1];
    return [x, sum / (hi - lo)];
  });
}

/** An SVG line chart; a chart whose series hold no numeric point shows "no data". */
export function lineChart(spec: ChartSpec): string {
  const W = spec.width ?? 560, H = spec.height ?? 300;
  const m = { left: 64, right: 16, top: 36, bottom: 46 };
  const legendRows = spec.series.length > 1 ? Math.ceil(spec.series.length / 3) : 0;
  m.top += legendRows * 16;
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;

  const pts = spec.series.flatMap((s) => s.points.filter((p): p is [number, number] => p[1] !== null && Number.isFinite(p[1])));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(spec.title)}</text>`);
  if (pts.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no data</text></svg>`);
    return out.join('\n');
  }

  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const xt = niceTicks(Math.min(...xs), Math.max(...xs), Math.max(2, Math.round(pw / 90)), xs.every(Number.isInteger));
  const yt = niceTicks(Math.min(...ys), Math.max(...ys), Math.max(2, Math.round(ph / 45)));
  const x0 = xt[0], x1 = xt[xt.length - 1], y0 = yt[0], y1 = yt[yt.length - 1];
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(1);

  // Grid, ticks and tick labels.
  const yl = tickLabels(yt), xl = tickLabels(xt);
  yt.forEach((v, i) => {
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${f(sy(v))}" y2="${f(sy(v))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${f(sy(v) + 4)}" text-anchor="end" fill="#333">${yl[i]}</text>`);
  });
  xt.forEach((v, i) => {
    out.push(`<line x1="${f(sx(v))}" x2="${f(sx(v))}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="#333"/>`);
    out.push(`<text x="${f(sx(v))}" y="${m.top + ph + 18}" text-anchor="middle" fill="#333">${xl[i]}</text>`);
  });
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`);

  // Lines, broken at null points; dots when points are few. Long series are
  // drawn faint, with a centred moving average over them, so that a trend
  // shows through step-to-step noise.
  const longest = Math.max(...spec.series.map((s) => s.points.filter((p) => p[1] !== null && Number.isFinite(p[1])).length));
  const window = longest > 40 ? 2 * Math.round(longest / 40) + 1 : 0;
  spec.series.forEach((s, i) => {
    const color = palette[i % palette.length];
    const name = escapeXml(s.name);
    out.push(`<g class="series" data-name="${name}">`);
    const raw = window > 0 ? ' stroke-opacity="0.35" stroke-width="1.2"' : ' stroke-width="1.8"';
    for (const run of lineRuns(s.points)) {
      if (run.length > 1) out.push(`<polyline fill="none" stroke="${color}"${raw} points="${run.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(' ')}"/>`);
    }
    if (window > 0) {
      for (const run of lineRuns(s.points)) {
        const avg = movingAverage(run, window);
        if (avg.length > 1) out.push(`<polyline class="smooth" fill="none" stroke="${color}" stroke-width="2.2" points="${avg.map(([x, y]) => `${f(sx(x))},${f(sy(y))}`).join(' ')}"/>`);
      }
    } else {
      for (const run of lineRuns(s.points)) for (const [x, y] of run) out.push(`<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="2.5" fill="${color}"/>`);
    }
    out.push('</g>');
  });
  if (window > 0) {
    out.push(`<text x="${m.left + pw}" y="${H - 8}" text-anchor="end" font-size="10" fill="#777">bold: mean of ${window} points</text>`);
  }

  // Legend above the plot, three entries to a row.
  if (legendRows > 0) {
    const colW = pw / 3;
    spec.series.forEach((s, i) => {
      const lx = m.left + (i % 3) * colW, ly = 40 + Math.floor(i / 3) * 16;
      out.push(`<line x1="${f(lx)}" x2="${f(lx + 18)}" y1="${ly - 4}" y2="${ly - 4}" stroke="${palette[i % palette.length]}" stroke-width="3"/>`);
      out.push(`<text x="${f(lx + 24)}" y="${ly}">${escapeXml(s.name)}</text>`);
    });
  }
  out.push('</svg>');
  return out.join('\n');
}
