import { act, fireEvent, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { OpenEpisodeOut, OpportunityOut } from "../../api/types";
import { applyMessage } from "../../live/context";
import type { LiveMessage, Snapshot } from "../../live/protocol";
import { apiCalls, apiRoutes } from "../../test/setup";
import { entry, renderWithLive, testLive } from "../../test/util";
import { OpportunitiesScreen } from "./OpportunitiesScreen";

function alert(symbol: string, buy: string, sell: string, net: string): OpportunityOut {
  const leg = (venue: string, price: string) => ({
    venue,
    instrument_id: `${symbol}-USDT-PERP@${venue}`,
    price: Number(price),
    size: 1.5,
    fee: 0.0005,
    age_ms: 12,
    exchange_ts_ns: 1,
    receipt_ts_ns: 1,
  });
  return {
    type: "opportunity",
    event_id: `${symbol}:${buy}->${sell}:1`,
    symbol,
    buy: leg(buy, "100"),
    sell: leg(sell, "101.5"),
    gross_spread: 0.015,
    net_spread: Number(net),
    size: 1.5,
    notional: 150,
    skew_ms: 3,
    episode_start_ts_ns: 1,
    cooldown_broken: false,
    exchange_ts_ns: 1,
    receipt_ts_ns: 1,
    detected_ts_ns: 1_795_000_000_000_000_000,
    emitted_ts_ns: null,
  };
}

const SUBSCRIPTION: Snapshot["subscription"] = {
  channels: ["episodes"],
  symbols: null,
  venues: null,
  min_net_spread: null,
  all_instruments: false,
};

function episode(a: OpportunityOut): OpenEpisodeOut {
  return {
    event_id: a.event_id,
    symbol: a.symbol,
    buy_venue: a.buy.venue,
    sell_venue: a.sell.venue,
    buy_instrument_id: a.buy.instrument_id,
    sell_instrument_id: a.sell.instrument_id,
    start_ts_ns: 1,
    alive_ms: 4200,
    ticks: 7,
    peak_net_spread: a.net_spread,
    avg_net_spread: a.net_spread,
    last_net_spread: a.net_spread,
    alerted: true,
    last: a,
  };
}

describe("OpportunitiesScreen", () => {
  it("lists open episodes and alerts, and sends the filters to the API (no filtering of its own)", async () => {
    const btc = alert("BTC", "binance", "okx", "0.0140");
    apiRoutes.set("/api/opportunities", () => ({ opportunities: [episode(btc)], recent_alerts: [btc], timestamp: "" }));
    const live = testLive();
    live.store.replaceAll({ BTC: { binance: entry("binance", "1", "2"), okx: entry("okx", "1", "2") } });
    renderWithLive(<OpportunitiesScreen />, live);

    await waitFor(() => expect(document.querySelector('[data-testid="open-episodes"] tr[data-symbol="BTC"]')).toBeTruthy());
    const row = document.querySelector('[data-testid="open-episodes"] tr[data-symbol="BTC"]') as HTMLElement;
    expect(row.dataset.buy).toBe("binance");
    expect(row.dataset.sell).toBe("okx");
    expect(row.textContent).toContain("1.400 %");
    expect(row.textContent).toContain("4.2s");
    expect(document.querySelectorAll('[data-testid="recent-alerts"] tr[data-symbol="BTC"]')).toHaveLength(1);

    fireEvent.change(screen.getByTestId("opp-min-net"), { target: { value: "0.5" } });
    fireEvent.change(screen.getByTestId("opp-symbol"), { target: { value: "BTC" } });
    fireEvent.change(screen.getByTestId("opp-venue"), { target: { value: "okx" } });
    await waitFor(() => {
      const last = apiCalls.filter((u) => u.pathname === "/api/opportunities").at(-1);
      expect(last?.searchParams.get("min_net_spread")).toBe("0.005");
      expect(last?.searchParams.get("symbol")).toBe("BTC");
      expect(last?.searchParams.get("venue")).toBe("okx");
    });
  });
});

describe("OpportunitiesScreen with the episodes channel", () => {
  it("renders open episodes from the WebSocket and applies the filters itself", async () => {
    const btc = { ...episode(alert("BTC", "binance", "okx", "0.0140")), alerted: false, ticks: 3 };
    const eth = episode(alert("ETH", "bybit", "okx", "0.0030"));
    apiRoutes.set("/api/opportunities", () => ({ opportunities: [], recent_alerts: [], timestamp: "" }));
    const live = testLive();
    live.store.replaceAll({ BTC: { binance: entry("binance", "1", "2"), okx: entry("okx", "1", "2") } });
    const apply = (message: LiveMessage) => act(() => applyMessage(live, message, () => {}, new Set()));
    renderWithLive(<OpportunitiesScreen />, live);

    const rows = () =>
      [...document.querySelectorAll<HTMLElement>('[data-testid="open-episodes"] tr[data-symbol]')].map((r) => [
        r.dataset.symbol,
        r.dataset.buy,
        r.dataset.sell,
        r.dataset.net,
      ]);
    apply({ type: "snapshot", seq: 1, data: { subscription: SUBSCRIPTION, open_episodes: [eth] } });
    await waitFor(() => expect(rows()).toEqual([["ETH", "bybit", "okx", "0.003"]]));
    // An update for BTC whose alert the cooldown suppressed: shown without any REST round trip.
    apply({ type: "episodes", seq: 2, data: { symbol: "BTC", episodes: [btc] } });
    await waitFor(() => expect(rows()).toHaveLength(2));
    const btcRow = document.querySelector('[data-testid="open-episodes"] tr[data-symbol="BTC"]') as HTMLElement;
    expect(btcRow.textContent).toContain("1.400 %");
    expect(btcRow.textContent).toContain("cooldown");
    expect(rows()[0]).toEqual(["BTC", "binance", "okx", "0.014"]); // best net first

    fireEvent.change(screen.getByTestId("opp-min-net"), { target: { value: "0.5" } });
    await waitFor(() => expect(rows()).toEqual([["BTC", "binance", "okx", "0.014"]]));
    fireEvent.change(screen.getByTestId("opp-min-net"), { target: { value: "" } });
    fireEvent.change(screen.getByTestId("opp-venue"), { target: { value: "okx" } });
    await waitFor(() => expect(rows()).toHaveLength(2));
    fireEvent.change(screen.getByTestId("opp-venue"), { target: { value: "binance" } });
    await waitFor(() => expect(rows()).toEqual([["BTC", "binance", "okx", "0.014"]]));
    fireEvent.change(screen.getByTestId("opp-venue"), { target: { value: "" } });

    // The episode closed: an empty list replaces what was held for the symbol.
    apply({ type: "episodes", seq: 3, data: { symbol: "BTC", episodes: [] } });
    await waitFor(() => expect(rows()).toEqual([["ETH", "bybit", "okx", "0.003"]]));
  });
});
