import { waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { SpreadHistoryOut, SpreadOut } from "../../api/types";
import { apiCalls, apiRoutes } from "../../test/setup";
import { entry, renderWithLive, testLive } from "../../test/util";
import type { SpreadPoint } from "./SpreadChart";
import { SymbolScreen } from "./SymbolScreen";

// lightweight-charts needs a canvas: record what the screen hands the chart instead.
const drawn: (readonly SpreadPoint[])[] = [];
vi.mock("./SpreadChart", async (importOriginal) => ({
  ...(await importOriginal<typeof import("./SpreadChart")>()),
  SpreadChart: ({ points }: { points: readonly SpreadPoint[] }) => {
    drawn.push(points);
    return <div data-testid="spread-chart" />;
  },
}));

const T = 1_795_000_000; // seconds
const NS = 1_000_000_000;

function spreadAt(seconds: number, pct: string): SpreadOut {
  return {
    symbol: "BTC",
    exchange1: "binance",
    exchange2: "bybit",
    quote_group: "USDT",
    instrument1: "BTC-USDT-PERP@binance",
    instrument2: "BTC-USDT-PERP@bybit",
    price1: 100000,
    price2: 100400,
    spread: 400,
    spread_percentage: Number(pct),
    exchanges: ["binance", "bybit"],
    higher: "bybit",
    lower: "binance",
    higher_price: 100400,
    lower_price: 100000,
    price_difference: 400,
    price_difference_percentage: Number(pct),
    buy_1_sell_2: null,
    buy_2_sell_1: null,
    timestamp: seconds * 1000 + 250,
    timestamp_iso: new Date(seconds * 1000 + 250).toISOString(),
  };
}

describe("SymbolScreen spread chart", () => {
  it("starts from the API's recorded history, then appends live samples", async () => {
    const history: SpreadHistoryOut = {
      symbol: "BTC",
      exchange1: "binance",
      exchange2: "bybit",
      seconds: 600,
      interval_ms: 250,
      points: [
        { ts_ns: (T - 3) * NS, spread: 300, spread_percentage: 0.3 },
        { ts_ns: (T - 2) * NS, spread: 200, spread_percentage: 0.2 },
        { ts_ns: (T - 2) * NS + 500_000_000, spread: 250, spread_percentage: 0.25 }, // same second: latest wins
        { ts_ns: (T - 1) * NS, spread: 100, spread_percentage: 0.1 },
      ],
      timestamp: "",
    };
    apiRoutes.set("/api/spread/BTC/binance/bybit/history", () => history);
    let live = spreadAt(T, "0.4");
    apiRoutes.set("/api/spread/BTC/binance/bybit", () => live);
    const store = testLive();
    store.store.replaceAll({ BTC: { binance: entry("binance", "1", "2"), bybit: entry("bybit", "1", "2") } });
    const { client } = renderWithLive(<SymbolScreen symbol="BTC" />, store);

    const mids = () => (drawn.at(-1) ?? []).map((p) => [p.time, p.mid]);
    await waitFor(() =>
      expect(mids()).toEqual([
        [T - 3, 0.3],
        [T - 2, 0.25],
        [T - 1, 0.1],
        [T, 0.4],
      ]),
    );
    const asked = apiCalls.find((u) => u.pathname.endsWith("/history"));
    expect(asked?.searchParams.get("seconds")).toBe("600");

    live = spreadAt(T + 1, "0.45");
    await client.invalidateQueries({ queryKey: ["spread"] });
    await waitFor(() => expect(mids().slice(-2)).toEqual([[T, 0.4], [T + 1, 0.45]]));
    expect(mids()).toHaveLength(5);
    expect(apiCalls.filter((u) => u.pathname.endsWith("/history"))).toHaveLength(1); // loaded once
  });
});
