/**
 * Charts drawn as SVG with d3-scale (scales and ticks; Preact draws the marks). Each chart has a
 * title and a description for assistive technology, and a table with the same numbers below it.
 */
import { scaleBand, scaleLinear } from 'd3-scale';
import type { JSX } from 'preact';
import type { Bar } from '../model/metrics.js';

/** The chart's numbers as a table, for whoever cannot or would rather not read the drawing. */
function NumbersTable(props: { heading: string; valueHeading: string; rows: Bar[]; format: (value: number) => string }): JSX.Element {
  const withCounts = props.rows.some((r) => r.count !== undefined);
  return (
    <details>
      <summary>The numbers</summary>
      <table>
        <thead>
          <tr>
            <th scope="col">{props.heading}</th>
            <th scope="col">{props.valueHeading}</th>
            {withCounts && <th scope="col">Count</th>}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr key={row.label}>
              <th scope="row">{row.label}</th>
              <td>{props.format(row.value)}</td>
              {withCounts && <td>{row.count ?? ''}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}

export function BarChart(props: {
  id: string;
  title: string;
  bars: Bar[];
  format?: (value: number) => string;
  unit: string;
  valueHeading: string;
}): JSX.Element {
  const format = props.format ?? ((v: number) => String(v));
  const rowHeight = 26;
  const labelWidth = 300;
  const width = 640;
  const height = Math.max(1, props.bars.length) * rowHeight + 24;
  const x = scaleLinear()
    .domain([0, Math.max(1e-9, ...props.bars.map((b) => b.value))])
    .nice()
    .range([labelWidth, width - 70]);
  const y = scaleBand<number>()
    .domain(props.bars.map((_, i) => i))
    .range([0, props.bars.length * rowHeight])
    .padding(0.2);
  return (
    <figure class="chart">
      <figcaption id={`${props.id}-title`}>{props.title}</figcaption>
      {props.bars.length === 0 ? (
        <p class="muted">No data in this period.</p>
      ) : (
        <>
          <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={`${props.id}-title`}>
            {props.bars.map((bar, i) => (
              <g key={bar.label}>
                <text x={labelWidth - 8} y={(y(i) ?? 0) + y.bandwidth() / 2 + 4} text-anchor="end" class="chart-label">
                  {bar.label.length > 44 ? `${bar.label.slice(0, 43)}…` : bar.label}
                </text>
                <rect x={labelWidth} y={y(i)} width={Math.max(0, x(bar.value) - labelWidth)} height={y.bandwidth()} class="chart-bar" />
                <text x={x(bar.value) + 6} y={(y(i) ?? 0) + y.bandwidth() / 2 + 4} class="chart-value">
                  {format(bar.value)}
                </text>
              </g>
            ))}
            <line x1={labelWidth} x2={labelWidth} y1={0} y2={props.bars.length * rowHeight} class="chart-axis" />
          </svg>
          <NumbersTable heading={props.unit} valueHeading={props.valueHeading} rows={props.bars} format={format} />
        </>
      )}
    </figure>
  );
}

export function Histogram(props: { id: string; title: string; bins: Bar[]; median?: number; xLabel: string }): JSX.Element {
  const width = 640;
  const height = 240;
  const margin = { top: 16, right: 16, bottom: 44, left: 44 };
  const x = scaleBand<string>()
    .domain(props.bins.map((b) => b.label))
    .range([margin.left, width - margin.right])
    .padding(0.1);
  const y = scaleLinear()
    .domain([0, Math.max(1, ...props.bins.map((b) => b.value))])
    .nice()
    .range([height - margin.bottom, margin.top]);
  const medianBin =
    props.median === undefined
      ? undefined
      : props.bins.find((b) => {
          const [low, high] = b.label.split('-').map(Number);
          return props.median! >= low! && props.median! <= (high ?? low!) + (high === undefined ? 0.999 : 0);
        });
  const every = Math.ceil(props.bins.length / 16);
  return (
    <figure class="chart">
      <figcaption id={`${props.id}-title`}>{props.title}</figcaption>
      {props.bins.length === 0 ? (
        <p class="muted">No first infusion in this period.</p>
      ) : (
        <>
          <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={`${props.id}-title`}>
            {y.ticks(4).map((t) => (
              <g key={t}>
                <line x1={margin.left} x2={width - margin.right} y1={y(t)} y2={y(t)} class="chart-grid" />
                <text x={margin.left - 6} y={y(t) + 4} text-anchor="end" class="chart-label">
                  {t}
                </text>
              </g>
            ))}
            {props.bins.map((bin, i) => (
              <g key={bin.label}>
                <rect
                  x={x(bin.label)}
                  y={y(bin.value)}
                  width={x.bandwidth()}
                  height={Math.max(0, y(0) - y(bin.value))}
                  class={bin === medianBin ? 'chart-bar chart-bar-median' : 'chart-bar'}
                />
                {i % every === 0 && (
                  <text
                    x={(x(bin.label) ?? 0) + x.bandwidth() / 2}
                    y={height - margin.bottom + 16}
                    text-anchor="middle"
                    class="chart-label"
                  >
                    {bin.label}
                  </text>
                )}
              </g>
            ))}
            <text x={(margin.left + width - margin.right) / 2} y={height - 6} text-anchor="middle" class="chart-label">
              {props.xLabel}
            </text>
          </svg>
          <NumbersTable heading={props.xLabel} valueHeading="Referrals" rows={props.bins} format={String} />
        </>
      )}
    </figure>
  );
}
