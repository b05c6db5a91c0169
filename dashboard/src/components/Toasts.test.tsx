import { act, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { OpportunityOut } from "../api/types";
import { applyMessage } from "../live/context";
import { renderWithLive, testLive } from "../test/util";
import { Toasts } from "./Toasts";

const alert = (id: string, symbol = "BTC") =>
  ({
    type: "opportunity",
    event_id: id,
    symbol,
    buy: { venue: "binance", instrument_id: "", price: 100, size: 1, fee: 0, age_ms: 0, exchange_ts_ns: 0, receipt_ts_ns: 0 },
    sell: { venue: "okx", instrument_id: "", price: 101, size: 1, fee: 0, age_ms: 0, exchange_ts_ns: 0, receipt_ts_ns: 0 },
    gross_spread: 0.01,
    net_spread: 0.009,
    size: 1,
    notional: 100,
    skew_ms: 0,
    episode_start_ts_ns: 0,
    cooldown_broken: false,
    exchange_ts_ns: 0,
    receipt_ts_ns: 0,
    detected_ts_ns: 0,
    emitted_ts_ns: null,
  }) as OpportunityOut;

describe("Toasts", () => {
  it("announces each new alert once, never the snapshot's backlog or a redelivery", () => {
    const live = testLive();
    const seen = new Set<string>();
    const noop = () => undefined;
    renderWithLive(<Toasts sound={false} />, live);
    act(() =>
      applyMessage(live, { type: "snapshot", seq: 1, data: { subscription: {} as never, recent_alerts: [alert("old")] } }, noop, seen),
    );
    expect(screen.queryAllByTestId("alert-toast")).toHaveLength(0);
    act(() => applyMessage(live, { type: "opportunity", seq: 2, data: alert("old") }, noop, seen));
    expect(screen.queryAllByTestId("alert-toast")).toHaveLength(0);
    act(() => applyMessage(live, { type: "opportunity", seq: 3, data: alert("new", "ETH") }, noop, seen));
    act(() => applyMessage(live, { type: "opportunity", seq: 4, data: alert("new", "ETH") }, noop, seen));
    const toasts = screen.getAllByTestId("alert-toast");
    expect(toasts).toHaveLength(1);
    expect(toasts[0]?.textContent).toContain("ETH buy binance → sell okx");
    expect(toasts[0]?.textContent).toContain("0.900 %");
  });
});
