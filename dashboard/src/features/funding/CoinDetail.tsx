/** One symbol's funding: per-venue current and averaged APR, 30 days of settlements, its pairs. */
import { fmtPct, fmtPrice, fmtQty } from "../../lib/format";
import { href } from "../../lib/route";
import { PairsTable } from "./BestPairs";
import { Apr, IntervalBadge } from "./parts";
import { type CoinDetailOut, useCoinDetail } from "./queries";

const COLOURS = ["#7aa2f7", "#f5a623", "#2ecc71", "#e5484d", "#bb9af7", "#2ac3de", "#e0af68", "#9ece6a"];
const W = 800;
const H = 240;
const PAD = 36;

type Series = CoinDetailOut["history"][number];

/** Settled APR per venue over time, one line each (SVG: no chart library for a few hundred points). */
export function HistoryChart({ series }: { series: Series[] }) {
  const drawn = series.filter((s) => s.points.length > 0);
  if (drawn.length === 0) return <div className="empty-state" data-testid="history-empty">no settled rates kept yet</div>;
  const all = drawn.flatMap((s) => s.points);
  const t0 = Math.min(...all.map((p) => p.t));
  const t1 = Math.max(...all.map((p) => p.t), t0 + 1);
  const lo = Math.min(0, ...all.map((p) => Number(p.v)));
  const hi = Math.max(0, ...all.map((p) => Number(p.v)));
  const x = (t: number) => PAD + ((t - t0) / (t1 - t0)) * (W - 2 * PAD);
  const y = (v: number) => H - PAD / 2 - ((v - lo) / (hi - lo || 1)) * (H - PAD);
  return (
    <div className="chart-box">
      <div className="funding-legend small">
        {drawn.map((s, i) => (
          <span key={s.instrument_id}>
            <span className="swatch" style={{ background: COLOURS[i % COLOURS.length] }} />
            {s.exchange}
          </span>
        ))}
      </div>
      <svg className="funding-chart" viewBox={`0 0 ${W} ${H}`} data-testid="history-chart" role="img" aria-label="settled APR per venue">
        <line className="axis" x1={PAD} x2={W - PAD} y1={y(0)} y2={y(0)} />
        <text x={2} y={y(hi) + 4}>{fmtPct(hi, 1)}</text>
        <text x={2} y={y(lo)}>{fmtPct(lo, 1)}</text>
        <text x={PAD} y={H - 2}>{new Date(t0).toISOString().slice(0, 10)}</text>
        <text x={W - PAD - 60} y={H - 2}>{new Date(t1).toISOString().slice(0, 10)}</text>
        {drawn.map((s, i) => (
          <polyline
            key={s.instrument_id}
            data-testid="history-line"
            data-venue={s.exchange}
            fill="none"
            stroke={COLOURS[i % COLOURS.length]}
            strokeWidth={1.5}
            points={s.points.map((p) => `${x(p.t).toFixed(1)},${y(Number(p.v)).toFixed(1)}`).join(" ")}
          />
        ))}
      </svg>
    </div>
  );
}

export function CoinDetail({ symbol }: { symbol: string }) {
  const detail = useCoinDetail(symbol);
  if (detail.isError) return <p className="warn">{String(detail.error)}</p>;
  const data = detail.data;
  if (data === undefined) return <p className="muted">loading…</p>;
  return (
    <section data-testid="coin-detail">
      <p className="small">
        <a href={href({ screen: "funding" })}>‹ funding</a> · <a href={href({ screen: "symbol", symbol })}>prices and spreads of {symbol}</a>
      </p>
      <h2>{symbol}: funding per venue</h2>
      <div className="table-wrap">
        <table className="data small" data-testid="coin-stats">
          <thead>
            <tr>
              <th>venue</th>
              <th>interval</th>
              <th className="r">APR now</th>
              <th className="r">predicted</th>
              <th className="r">1d</th>
              <th className="r">7d</th>
              <th className="r">30d</th>
              <th className="r">price</th>
              <th className="r">24h volume</th>
              <th className="r">open interest</th>
            </tr>
          </thead>
          <tbody>
            {data.summary_stats.map((s) => (
              <tr key={s.instrument_id} title={s.instrument_id}>
                <td>{s.exchange}</td>
                <td>
                  <IntervalBadge hours={s.interval_h} />
                </td>
                <td className="r">
                  <Apr value={s.current_apr} />
                </td>
                <td className="r">
                  <Apr value={s.predicted_apr} />
                </td>
                <td className="r">
                  <Apr value={s.averages["1d"]} />
                </td>
                <td className="r">
                  <Apr value={s.averages["7d"]} />
                </td>
                <td className="r">
                  <Apr value={s.avg_apr} />
                </td>
                <td className="r num">{fmtPrice(s.price)}</td>
                <td className="r num">{fmtQty(s.volume)}</td>
                <td className="r num" data-testid="coin-open-interest">
                  {fmtQty(s.open_interest)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Settled APR, 30 days</h2>
      <HistoryChart series={data.history} />
      <h2>Pairs</h2>
      <PairsTable pairs={data.pairs} testId="coin-pairs" />
    </section>
  );
}
