import { fireEvent, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { apiCalls, apiRoutes } from "../../test/setup";
import { renderWithLive } from "../../test/util";
import { type BacktestOut, BacktestReport, BacktestsScreen, chartUrl } from "./BacktestsScreen";

const REPORT: BacktestOut = {
  name: "20261206T104140Z",
  ticks: 6094,
  first_utc: "2026-12-06 10:34:42",
  last_utc: "2026-12-06 10:35:31",
  charts: ["capacity.png", "pnl.png", "pairs.png"],
  runs: [
    { name: "base", alerts: 4, episodes_closed: 16, suppressed_by_cooldown: 12, naive_pnl: "221.10", settings: {} },
    {
      name: "compare",
      alerts: 9,
      episodes_closed: 16,
      suppressed_by_cooldown: 7,
      naive_pnl: "402.55",
      settings: { cooldown_s: "0" },
    },
  ],
};

describe("BacktestReport", () => {
  it("compares the runs and shows the report's charts in the report's order", () => {
    renderWithLive(<BacktestReport report={REPORT} />);
    const rows = within(screen.getByTestId("backtest-runs")).getAllByRole("row");
    expect(rows.map((r) => r.textContent)).toEqual([
      "runalertsepisodessuppressed by cooldownnaive PnLsettings",
      "base41612221.10defaults",
      "compare9167402.55cooldown_s=0",
    ]);
    const images = screen.getAllByRole("img") as HTMLImageElement[];
    expect(images.map((i) => i.alt)).toEqual(["Episodes per pair", "Capacity", "Naive PnL"]);
    expect(images[0]?.getAttribute("src")).toBe(chartUrl(REPORT.name, "pairs.png"));
    expect(chartUrl("a b", "pnl.png")).toMatch(/\/api\/backtests\/a%20b\/pnl\.png$/);
  });
});

const OLDER: BacktestOut = {
  name: "20261205T090000Z",
  ticks: 1200,
  first_utc: "2026-12-05 08:59:00",
  last_utc: "2026-12-05 09:00:00",
  charts: ["durations.png", "net_spread.png"],
  runs: [{ name: "base", alerts: 1, episodes_closed: 2, suppressed_by_cooldown: 1, naive_pnl: "12.00", settings: {} }],
};

function imageSources(): string[] {
  return (screen.getAllByRole("img") as HTMLImageElement[]).map((i) => i.getAttribute("src") ?? "");
}

describe("BacktestsScreen", () => {
  it("lists the reports from GET /api/backtests and shows the newest (the API's first) with its charts", async () => {
    apiRoutes.set("/api/backtests", () => ({ directory: "backtest-results", reports: [REPORT, OLDER] }));
    renderWithLive(<BacktestsScreen />);
    const select = (await screen.findByTestId("backtest-select")) as HTMLSelectElement;
    expect(apiCalls.map((u) => u.pathname)).toEqual(["/api/backtests"]);
    expect(Array.from(select.options).map((o) => o.textContent)).toEqual([
      "20261206T104140Z (base: 4 alerts, compare: 9 alerts)",
      "20261205T090000Z (base: 1 alerts)",
    ]);
    expect(select.value).toBe(REPORT.name);
    expect(within(screen.getByTestId("backtest-report")).getByRole("heading").textContent).toContain(REPORT.name);
    expect(imageSources()).toEqual(["pairs.png", "capacity.png", "pnl.png"].map((c) => chartUrl(REPORT.name, c)));
  });

  it("selecting another report shows that report's runs and charts", async () => {
    apiRoutes.set("/api/backtests", () => ({ directory: "backtest-results", reports: [REPORT, OLDER] }));
    renderWithLive(<BacktestsScreen />);
    const select = await screen.findByTestId("backtest-select");
    fireEvent.change(select, { target: { value: OLDER.name } });
    expect((select as HTMLSelectElement).value).toBe(OLDER.name);
    const rows = within(screen.getByTestId("backtest-runs")).getAllByRole("row");
    expect(rows.map((r) => r.textContent)).toEqual([
      "runalertsepisodessuppressed by cooldownnaive PnLsettings",
      "base12112.00defaults",
    ]);
    expect(imageSources()).toEqual(["durations.png", "net_spread.png"].map((c) => chartUrl(OLDER.name, c)));
    expect((screen.getAllByRole("img") as HTMLImageElement[]).map((i) => i.alt)).toEqual([
      "Episode durations",
      "Peak net spreads",
    ]);
  });

  it("says how to make a report when there is none", async () => {
    apiRoutes.set("/api/backtests", () => ({ directory: "backtest-results", reports: [] }));
    renderWithLive(<BacktestsScreen />);
    const empty = await screen.findByTestId("backtests-empty");
    expect(empty.textContent).toContain("arbstream backtest --sample");
    expect(screen.queryByTestId("backtest-select")).toBeNull();
    expect(screen.queryAllByRole("img")).toEqual([]);
  });

  it("says the reports are unavailable when the API fails", async () => {
    renderWithLive(<BacktestsScreen />); // no route: the fake API answers 404
    expect((await screen.findByText(/^Backtests unavailable:/)).textContent).toContain("404");
  });
});
