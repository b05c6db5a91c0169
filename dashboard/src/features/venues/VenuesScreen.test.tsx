import { act, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { VenueOut, WorkerOut } from "../../api/types";
import { applyMessage } from "../../live/context";
import { renderWithLive, testLive } from "../../test/util";
import { droppedForFreshness, VenuesScreen } from "./VenuesScreen";

function venue(name: string, state: string): VenueOut {
  return {
    venue: name,
    state,
    connections: [
      {
        connection: `${name}-0`,
        state,
        reason: state === "stale" ? "no data for 3s" : "",
        reconnects: state === "stale" ? 2 : 0,
        frames_total: 100,
        events_total: 100,
        malformed_total: 0,
        resyncs_total: state === "stale" ? 3 : 0,
        last_message_age_ms: 4000,
        messages_per_s: 10,
        events_per_s: 10,
        reported_age_ms: 100,
      },
    ],
    symbols: ["BTC"],
    instruments: [`BTC-USDT-PERP@${name}`],
    quote_count: 1,
    last_quote_timestamp: Date.now(),
    last_quote_age_ms: 4000,
    taker_fee: 0.0005,
    listing: null,
  };
}

describe("VenuesScreen", () => {
  it("shows each venue's state as the API reports it, updated by venue_health", () => {
    const live = testLive();
    renderWithLive(<VenuesScreen />, live);
    expect(screen.getByText("No venue reported yet.")).toBeTruthy();
    const invalidate = () => undefined;
    act(() =>
      applyMessage(live, { type: "snapshot", seq: 1, data: { subscription: {} as never, venues: [venue("binance", "streaming"), venue("okx", "streaming")] } }, invalidate, new Set()),
    );
    const okxRow = () => document.querySelector('tr[data-venue="okx"]') as HTMLElement;
    expect(okxRow().dataset.state).toBe("streaming");
    act(() => applyMessage(live, { type: "venue_health", seq: 2, data: venue("okx", "stale") }, invalidate, new Set()));
    expect(okxRow().dataset.state).toBe("stale");
    expect(okxRow().textContent).toContain("no data for 3s");
    const resyncs = [...document.querySelectorAll("thead th")].findIndex((th) => th.textContent === "Resyncs");
    expect(resyncs).toBeGreaterThan(-1);
    expect(okxRow().querySelectorAll("td")[resyncs]?.textContent).toBe("3");
    expect(okxRow().className).toContain("state-warn");
    expect((document.querySelector('tr[data-venue="binance"]') as HTMLElement).dataset.state).toBe("streaming");
    expect(screen.queryByText(/^live$/i)).toBeNull();
  });

  it("shows which listing each venue uses and how old it is", () => {
    const live = testLive();
    renderWithLive(<VenuesScreen />, live);
    const listing = (source: "live" | "cache" | "bundled", age_s: number, error: string) => ({
      source,
      listed_at: "2026-12-06T10:00:00.000Z",
      listed_timestamp_ms: 1796551200000,
      age_s,
      instruments: 600,
      tracked: 412,
      error,
      reported_age_s: 1,
    });
    const binance = { ...venue("binance", "streaming"), listing: listing("live", 90, "") };
    const okx = { ...venue("okx", "streaming"), listing: listing("cache", 7200, "live: timed out after 10s") };
    act(() =>
      applyMessage(live, { type: "snapshot", seq: 1, data: { subscription: {} as never, venues: [binance, okx] } }, () => undefined, new Set()),
    );
    const cell = (name: string) => document.querySelector(`tr[data-venue="${name}"] [data-testid="venue-listing"]`) as HTMLElement;
    expect(cell("binance").dataset.source).toBe("live");
    expect(cell("binance").textContent).toMatch(/^live 1m3\ds$/);
    expect(cell("binance").querySelector(".tag")?.className).toContain("ok");
    expect(cell("okx").dataset.source).toBe("cache");
    expect(cell("okx").textContent).toContain("2h0m");
    expect(cell("okx").title).toContain("412 of 600 perpetuals tracked");
    expect(cell("okx").title).toContain("live fetch failed: live: timed out after 10s");
    expect(cell("okx").querySelector(".tag")?.className).toContain("warn");
  });

  it("sums over the workers what they dropped to stay fresh, and says nothing when nothing was", () => {
    const worker = (id: string, conflated: number, skipped: number): WorkerOut => ({
      worker_id: id,
      processed: 10_000,
      conflated,
      rebuilt: 0,
      forwarded: 0,
      rejected: 0,
      out_of_order: 0,
      skipped_records: skipped,
      recovery_reseeks: 0,
      partitions: 240,
      lag_ms: 40,
      reported_age_ms: 500,
      alive: true,
    });
    expect(droppedForFreshness([])).toBe("");
    expect(droppedForFreshness([worker("w1", 0, 0)])).toBe("");
    expect(droppedForFreshness([worker("w1", 1_200, 0), worker("w2", 34, 5)])).toBe(
      "dropped for freshness: 1,234 ticks conflated, 5 records skipped",
    );
  });
});
