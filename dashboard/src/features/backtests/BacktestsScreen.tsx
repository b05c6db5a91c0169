import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { ApiError } from "../../api/client";
import { config } from "../../config";

/** `GET /api/backtests` (api/views_backtests.py). */
export interface BacktestOut {
  name: string;
  ticks: number;
  first_utc: string;
  last_utc: string;
  runs: {
    name: string;
    alerts: number;
    episodes_closed: number;
    suppressed_by_cooldown: number;
    naive_pnl: string;
    settings: Record<string, string>;
  }[];
  charts: string[];
}

export function useBacktests() {
  return useQuery({
    queryKey: ["backtests"],
    queryFn: async (): Promise<{ reports: BacktestOut[] }> => {
      const response = await fetch(`${config.apiBase}/api/backtests`);
      if (!response.ok) throw new ApiError(response.status, await response.text());
      return (await response.json()) as { reports: BacktestOut[] };
    },
    refetchInterval: 30_000,
  });
}

/** The chart order of `report.md` (pairs first, PnL last); files the report lacks are skipped. */
const CHART_TITLES: Record<string, string> = {
  "pairs.png": "Episodes per pair",
  "durations.png": "Episode durations",
  "net_spread.png": "Peak net spreads",
  "capacity.png": "Capacity",
  "pnl.png": "Naive PnL",
};

export function chartUrl(report: string, chart: string): string {
  return `${config.apiBase}/api/backtests/${encodeURIComponent(report)}/${encodeURIComponent(chart)}`;
}

function RunsTable({ report }: { report: BacktestOut }) {
  return (
    <table className="grid small num" data-testid="backtest-runs">
      <thead>
        <tr>
          <th>run</th>
          <th>alerts</th>
          <th>episodes</th>
          <th>suppressed by cooldown</th>
          <th>naive PnL</th>
          <th>settings</th>
        </tr>
      </thead>
      <tbody>
        {report.runs.map((run) => (
          <tr key={run.name}>
            <td>{run.name}</td>
            <td>{run.alerts}</td>
            <td>{run.episodes_closed}</td>
            <td>{run.suppressed_by_cooldown}</td>
            <td>{run.naive_pnl}</td>
            <td className="muted">
              {Object.entries(run.settings)
                .map(([k, v]) => `${k}=${v}`)
                .join(", ") || "defaults"}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function BacktestReport({ report }: { report: BacktestOut }) {
  const charts = Object.keys(CHART_TITLES).filter((name) => report.charts.includes(name));
  return (
    <section data-testid="backtest-report">
      <h3>
        {report.name}{" "}
        <span className="muted small">
          {report.ticks.toLocaleString()} ticks · {report.first_utc} → {report.last_utc} UTC
        </span>
      </h3>
      <RunsTable report={report} />
      <p className="small">
        <a href={chartUrl(report.name, "report.md")}>report.md</a> ·{" "}
        <a href={chartUrl(report.name, "report.json")}>report.json</a>
      </p>
      <div className="charts">
        {charts.map((chart) => (
          <figure key={chart}>
            <img src={chartUrl(report.name, chart)} alt={CHART_TITLES[chart]} loading="lazy" />
            <figcaption className="small muted">{CHART_TITLES[chart]}</figcaption>
          </figure>
        ))}
      </div>
    </section>
  );
}

export function BacktestsScreen() {
  const backtests = useBacktests();
  const [chosen, setChosen] = useState<string | null>(null);
  if (backtests.isError) return <p className="warn">Backtests unavailable: {String(backtests.error)}</p>;
  const reports = backtests.data?.reports ?? [];
  if (backtests.isLoading) return <p className="muted">Loading backtests…</p>;
  if (reports.length === 0) {
    return (
      <p className="muted" data-testid="backtests-empty">
        No backtest reports yet. Run <code>arbstream backtest --sample</code> (or on your own recordings) and they
        appear here.
      </p>
    );
  }
  const current = reports.find((r) => r.name === chosen) ?? reports[0];
  if (current === undefined) return null;
  return (
    <div className="backtests">
      <label className="small">
        report{" "}
        <select value={current.name} onChange={(e) => setChosen(e.target.value)} data-testid="backtest-select">
          {reports.map((r) => (
            <option key={r.name} value={r.name}>
              {r.name} ({r.runs.map((run) => `${run.name}: ${run.alerts} alerts`).join(", ")})
            </option>
          ))}
        </select>
      </label>
      <BacktestReport report={current} />
    </div>
  );
}
