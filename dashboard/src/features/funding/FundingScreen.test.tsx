import { fireEvent, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { href, parseRoute } from "../../lib/route";
import { apiCalls, apiRoutes } from "../../test/setup";
import { renderWithLive } from "../../test/util";
import { fmtHours } from "./BestPairs";
import { CoinDetail } from "./CoinDetail";
import { FundingAlerts } from "./FundingAlerts";
import { FundingScreen } from "./FundingScreen";
import { parseVolume, venueList } from "./parts";
import type { CoinDetailOut, FundingTableOut, PairOut, PairsOut } from "./queries";

const NOW = Date.now();
const HOUR = 3_600_000;

function leg(exchange: string, interval_h: number, rate: number, apr: number, price: number | null) {
  return {
    exchange,
    instrument_id: `ETH-USDT-PERP@${exchange}`,
    rate,
    interval_h,
    apr,
    avg_apr: null,
    funding_per_h: rate / interval_h,
    next_funding_time: NOW + HOUR,
    next_funding_estimated: exchange === "hyperliquid",
    price,
    fee: 0.0005,
    volume: 50_000_000,
    open_interest: exchange === "bybit" ? 30_000_000 : 12_000_000,
  };
}

const PAIR: PairOut = {
  symbol: "ETH",
  exchange: "hyperliquid",
  side: "LONG",
  apr: 48.18,
  price: 2000,
  long: leg("hyperliquid", 1, -0.00001, -8.76, 2000),
  short: leg("bybit", 4, 0.00018, 39.42, 1999.8),
  apr_spread: 48.18,
  avg_apr_spread: null,
  carry_per_h: 0.0055,
  price_spread: 0.2,
  entry_cost: 0.11,
  break_even_hours: 20,
  avg_break_even_hours: null,
  common_settlement_time: NOW + 2 * HOUR,
  carry_to_common: 0.021,
};

const PAIRS: PairsOut = { count: 1, total_pages: 1, current_page: 1, period: "now", side: "ALL", results: [PAIR] };

function entry(exchange: string, interval_h: number, live_apr: number, healthy = true) {
  return {
    exchange,
    instrument_id: `ETH-USDT-PERP@${exchange}`,
    price: 2000,
    live_apr,
    hist_apr: live_apr / 2,
    frequency: 24 / interval_h,
    history: [1, 3, 2],
    image: null,
    market_cap: null,
    volume: 5_000_000,
    open_interest: exchange === "binance" ? null : 12_340_000, // Binance's all-symbol ticker has none
    rate: 0.0001,
    interval_h,
    funding_per_h: 0.0001 / interval_h,
    predicted_rate: null,
    predicted_apr: null,
    next_funding_time: NOW + 90 * 60_000,
    next_funding_estimated: false,
    mark: null,
    index: null,
    side: "SHORT" as const,
    averages: { "1d": 21.9, "3d": null, "7d": null, "30d": null },
    healthy,
    age_ms: 1000,
    cap: exchange === "okx" ? 0.0001 : null,
    floor: exchange === "okx" ? -0.0001 : null,
    at_cap: exchange === "okx" ? true : null,
  };
}

const TABLE: FundingTableOut = {
  count: 1,
  total_pages: 1,
  current_page: 1,
  period: "1d",
  results: [
    {
      symbol: "ETH",
      asset_info: null,
      spread: 30.66,
      live_spread: 118.26,
      exchanges_data: [entry("binance", 8, 10.95), entry("hyperliquid", 1, -8.76), entry("okx", 8, 109.5, false)],
    },
  ],
};

describe("FundingScreen", () => {
  it("shows the best pairs with break-even and the table with interval badges", async () => {
    apiRoutes.set("/api/best-opportunities/", () => PAIRS);
    apiRoutes.set("/api/funding-table/", () => TABLE);
    apiRoutes.set("/api/stats/", () => ({ total_coins: 1, total_exchanges: 3, last_update: 1, settlements: 34, oldest_settlement: NOW - 25 * HOUR, history_loaded: true, funding_alerts: 0 }));
    renderWithLive(<FundingScreen />);
    const pair = await screen.findByTestId("pair-row");
    expect(pair.dataset.pair).toBe("hyperliquid/bybit");
    expect(within(pair).getByTestId("pair-apr").textContent).toBe("48.18 %");
    expect(within(pair).getByTestId("pair-break-even").textContent).toBe("20.0 h");
    expect(within(pair).getByTestId("pair-open-interest").textContent).toBe("12.00M / 30.00M");
    const rows = await screen.findAllByTestId("funding-venue-row");
    expect(rows.map((r) => r.dataset.venue)).toEqual(["binance", "hyperliquid", "okx"]);
    const badges = within(screen.getByTestId("funding-table")).getAllByTestId("interval-badge");
    expect(badges.map((b) => b.textContent)).toEqual(["8h", "1h", "8h"]);
    expect(rows[2]?.className).toBe("dim"); // okx's venue is down
    const capped = screen.getAllByTestId("at-cap-badge");
    expect(capped).toHaveLength(1); // only okx's rate sits at its cap; unknown caps show nothing
    expect(within(rows[2] as HTMLElement).getByTestId("at-cap-badge").textContent).toBe("at cap");
    expect(rows[0]?.textContent).toContain("10.95 %");
    const depths = rows.map((r) => within(r).getByTestId("open-interest").textContent);
    expect(depths).toEqual(["—", "12.34M", "12.34M"]);
    expect(screen.getAllByTestId("sparkline")).toHaveLength(3);
    expect((await screen.findByTestId("funding-stats")).textContent).toContain("34 settled rates kept (25h0m of history)");
    expect(screen.queryByTestId("funding-alerts")).toBeNull(); // no alert yet: no section
  });

  it("asks the API again with the chosen sort, period and floor", async () => {
    apiRoutes.set("/api/best-opportunities/", () => PAIRS);
    apiRoutes.set("/api/funding-table/", () => TABLE);
    apiRoutes.set("/api/stats/", () => ({}));
    renderWithLive(<FundingScreen />);
    await screen.findAllByTestId("funding-venue-row");
    fireEvent.change(screen.getByLabelText("table sort"), { target: { value: "apr" } });
    fireEvent.change(screen.getByLabelText("table period"), { target: { value: "7d" } });
    fireEvent.change(screen.getByLabelText("min volume"), { target: { value: "5m" } });
    fireEvent.change(screen.getByLabelText("min open interest"), { target: { value: "250k" } });
    await screen.findAllByTestId("funding-venue-row");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const table = apiCalls.filter((u) => u.pathname === "/api/funding-table/").at(-1);
    expect([table?.searchParams.get("sort"), table?.searchParams.get("period")]).toEqual(["apr", "7d"]);
    const pairs = apiCalls.filter((u) => u.pathname === "/api/best-opportunities/").at(-1);
    expect([pairs?.searchParams.get("min_volume"), pairs?.searchParams.get("min_open_interest")]).toEqual(["5000000", "250000"]);
    fireEvent.change(screen.getByLabelText("table sort"), { target: { value: "open_interest" } });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const byDepth = apiCalls.filter((u) => u.pathname === "/api/funding-table/").at(-1);
    expect(byDepth?.searchParams.get("sort")).toBe("open_interest");
  });
});

describe("FundingAlerts", () => {
  it("lists the worker's alerts with both legs' APRs", async () => {
    apiRoutes.set("/api/funding-alerts", () => ({
      alerts: [
        {
          event_id: "ETH:funding:hyperliquid/bybit:1",
          symbol: "ETH",
          long_exchange: "hyperliquid",
          short_exchange: "bybit",
          long_instrument_id: "ETH-USDT-PERP@hyperliquid",
          short_instrument_id: "ETH-USDT-PERP@bybit",
          long_apr: -8.76,
          short_apr: 39.42,
          spread_apr: 48.18,
          detected_time: Date.UTC(2026, 11, 6, 10, 0, 0),
          net_apr: 43,
          entry_cost: 0.1,
          priced: true,
          long_price: 2000,
          short_price: 2000,
          episode_start_time: Date.UTC(2026, 11, 6, 10, 0, 0),
          cooldown_broken: false,
        },
      ],
      closed: [],
    }));
    renderWithLive(<FundingAlerts />);
    const alert = await screen.findByTestId("funding-alert");
    expect(alert.textContent).toBe(
      "10:00:00.000 ETH long hyperliquid -8.76 % / short bybit 39.42 %: 48.18 % a year (net of entry 43.00 %)",
    );
  });
});

describe("CoinDetail", () => {
  it("draws one history line per venue with settlements", async () => {
    const detail: CoinDetailOut = {
      symbol: "ETH",
      asset: null,
      summary_stats: [
        {
          exchange: "bybit",
          instrument_id: "ETH-USDT-PERP@bybit",
          current_apr: 39.42,
          avg_apr: null,
          averages: { "1d": null, "3d": null, "7d": null, "30d": null },
          price: 2000,
          volume: 20_000_000,
          open_interest: 30_000_000,
          interval_h: 4,
          next_funding_time: NOW + HOUR,
          predicted_apr: null,
        },
      ],
      history: [
        { exchange: "binance", instrument_id: "ETH-USDT-PERP@binance", points: [{ t: NOW - 16 * HOUR, v: 21.9 }, { t: NOW - 8 * HOUR, v: 10.95 }] },
        { exchange: "okx", instrument_id: "ETH-USDT-PERP@okx", points: [] },
        { exchange: "hyperliquid", instrument_id: "ETH-USDT-PERP@hyperliquid", points: [{ t: NOW - HOUR, v: -8.76 }] },
      ],
      pairs: [PAIR],
    };
    apiRoutes.set("/api/coin-detail/ETH/", () => detail);
    renderWithLive(<CoinDetail symbol="ETH" />);
    await screen.findByTestId("history-chart");
    const lines = screen.getAllByTestId("history-line");
    expect(lines.map((l) => l.dataset.venue)).toEqual(["binance", "hyperliquid"]);
    expect(lines[0]?.getAttribute("points")?.split(" ")).toHaveLength(2);
    expect(within(screen.getByTestId("coin-pairs")).getAllByTestId("pair-row")).toHaveLength(1);
    expect(screen.getByTestId("coin-open-interest").textContent).toBe("30.00M");
  });
});

describe("funding helpers", () => {
  it("parse floors, venue lists, hours and routes", () => {
    expect([parseVolume("5m"), parseVolume("250k"), parseVolume("1000"), parseVolume("x")]).toEqual([5e6, 2.5e5, 1000, undefined]);
    expect(venueList("Binance, okx  bybit")).toEqual(["binance", "okx", "bybit"]);
    expect([fmtHours(20), fmtHours(72), fmtHours(null)]).toEqual(["20.0 h", "3.0 d", "—"]);
    expect(parseRoute("#/funding/eth")).toEqual({ screen: "funding", symbol: "ETH" });
    expect(parseRoute("#/funding")).toEqual({ screen: "funding" });
    expect([href({ screen: "funding", symbol: "ETH" }), href({ screen: "funding" })]).toEqual(["#/funding/ETH", "#/funding"]);
  });
});
