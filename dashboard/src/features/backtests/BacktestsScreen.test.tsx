import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { renderWithLive } from "../../test/util";
import { type BacktestOut, BacktestReport, chartUrl } from "./BacktestsScreen";

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
