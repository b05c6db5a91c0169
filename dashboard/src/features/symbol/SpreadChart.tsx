import {
  ColorType,
  createChart,
  type IChartApi,
  type ISeriesApi,
  LineSeries,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef } from "react";
import type { SpreadHistoryOut, SpreadOut } from "../../api/types";

export interface SpreadPoint {
  time: number;
  /** Reference-price spread, percent: (price2 - price1) / price1 x 100, as the API computes it. */
  mid: number | null;
  /** Executable net spread after fees, percent, buying on venue 1 and selling on venue 2. */
  net12: number | null;
  net21: number | null;
}

export function spreadPoint(spread: SpreadOut, timeMs: number): SpreadPoint {
  const n = (v: number | null | undefined) => (v === null || v === undefined ? null : v);
  return {
    time: Math.floor(timeMs / 1000),
    // Signed (venue 2 - venue 1), like the history samples; the seed's `spread_percentage` is its size.
    mid: n(spread.price_difference_percentage),
    net12: n(spread.buy_1_sell_2?.net_spread_percentage),
    net21: n(spread.buy_2_sell_1?.net_spread_percentage),
  };
}

/** The API's recorded samples (mid spread only), at most one point per second (the latest wins). */
export function historyPoints(history: SpreadHistoryOut): SpreadPoint[] {
  const out: SpreadPoint[] = [];
  for (const p of history.points) {
    const point: SpreadPoint = {
      time: Math.floor(p.ts_ns / 1e9),
      mid: p.spread_percentage === null || p.spread_percentage === undefined ? null : Number(p.spread_percentage),
      net12: null,
      net21: null,
    };
    if (out.length > 0 && out[out.length - 1]?.time === point.time) out[out.length - 1] = point;
    else out.push(point);
  }
  return out;
}

/** History first, then the live samples newer than its last point (whichever arrived first). */
export function withHistory(history: readonly SpreadPoint[], live: readonly SpreadPoint[], max: number): SpreadPoint[] {
  const last = history[history.length - 1]?.time ?? Number.NEGATIVE_INFINITY;
  return [...history, ...live.filter((p) => p.time > last)].slice(-max);
}

const COLORS = { mid: "#8ab4f8", net12: "#26a65b", net21: "#e5a00d" };

/** TradingView lightweight-charts: spread between two venues over time, one point per second at most. */
export function SpreadChart({ points, labels }: { points: readonly SpreadPoint[]; labels: [string, string] }) {
  const container = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<Record<keyof typeof COLORS, ISeriesApi<"Line">> | null>(null);
  const drawn = useRef(0);
  const first = useRef<SpreadPoint | undefined>(undefined);

  useEffect(() => {
    if (container.current === null) return;
    const c = createChart(container.current, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#0f1216" }, textColor: "#9aa4b2", fontFamily: "var(--mono)" },
      grid: { vertLines: { color: "#1c222a" }, horzLines: { color: "#1c222a" } },
      timeScale: { timeVisible: true, secondsVisible: true },
      rightPriceScale: { borderColor: "#2a313b" },
      localization: { priceFormatter: (p: number) => `${p.toFixed(3)} %` },
    });
    series.current = {
      mid: c.addSeries(LineSeries, { color: COLORS.mid, lineWidth: 2, title: "mid" }),
      net12: c.addSeries(LineSeries, { color: COLORS.net12, lineWidth: 1, title: "net 1→2" }),
      net21: c.addSeries(LineSeries, { color: COLORS.net21, lineWidth: 1, title: "net 2→1" }),
    };
    chart.current = c;
    drawn.current = 0;
    return () => {
      c.remove();
      chart.current = null;
      series.current = null;
    };
  }, []);

  useEffect(() => {
    const s = series.current;
    if (s === null) return;
    const keys = Object.keys(COLORS) as (keyof typeof COLORS)[];
    if (points.length < drawn.current || points[0] !== first.current) {
      // A new series (other pair, history loaded, oldest points trimmed): redraw it whole,
      // since update() only accepts points at or after the last one drawn.
      for (const key of keys) {
        s[key].setData(points.map((p) => (p[key] === null ? { time: p.time as UTCTimestamp } : { time: p.time as UTCTimestamp, value: p[key] })));
      }
      drawn.current = points.length;
      first.current = points[0];
      return;
    }
    for (const p of points.slice(Math.max(0, drawn.current - 1))) {
      const time = p.time as UTCTimestamp;
      for (const key of keys) {
        const value = p[key];
        s[key].update(value === null ? { time } : { time, value });
      }
    }
    drawn.current = points.length;
  }, [points]);

  return (
    <div className="chart-box">
      <div className="legend small">
        <span style={{ color: COLORS.mid }}>■ mid spread ({labels[1]} − {labels[0]})</span>
        <span style={{ color: COLORS.net12 }}>■ net buy {labels[0]} sell {labels[1]}</span>
        <span style={{ color: COLORS.net21 }}>■ net buy {labels[1]} sell {labels[0]}</span>
      </div>
      <div ref={container} className="chart" data-testid="spread-chart" />
    </div>
  );
}
