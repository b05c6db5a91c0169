import { describe, expect, it, vi } from "vitest";
import { entry } from "../test/util";
import { percentile, PriceStore } from "./store";

function manualStore() {
  const pending: (() => void)[] = [];
  const store = new PriceStore((flush) => pending.push(flush));
  const frame = () => {
    const run = pending.splice(0);
    for (const f of run) f();
  };
  return { store, frame };
}

describe("PriceStore", () => {
  it("coalesces any number of updates into one notification per frame, per symbol", () => {
    const { store, frame } = manualStore();
    const btc = vi.fn();
    const eth = vi.fn();
    store.subscribe("BTC", btc);
    store.subscribe("ETH", eth);
    for (let i = 0; i < 100; i++) store.apply("BTC", entry("binance", `${100 + i}`, `${101 + i}`));
    expect(btc).not.toHaveBeenCalled();
    frame();
    expect(btc).toHaveBeenCalledTimes(1);
    expect(eth).not.toHaveBeenCalled();
    expect(store.row("BTC").binance?.bid).toBe(199);
  });

  it("keeps row identity for unchanged symbols and replaces it for changed ones", () => {
    const { store, frame } = manualStore();
    store.apply("BTC", entry("binance", "1", "2"));
    store.apply("ETH", entry("okx", "1", "2"));
    frame();
    const eth = store.row("ETH");
    const btc = store.row("BTC");
    store.apply("BTC", entry("okx", "1", "2"));
    expect(store.row("ETH")).toBe(eth);
    expect(store.row("BTC")).not.toBe(btc);
    expect(Object.keys(store.row("BTC")).sort()).toEqual(["binance", "okx"]);
  });

  it("never goes back in time", () => {
    const { store } = manualStore();
    store.apply("BTC", entry("binance", "2", "3", { receipt_timestamp: 2000 }));
    store.apply("BTC", entry("binance", "1", "2", { receipt_timestamp: 1000 }));
    expect(store.row("BTC").binance?.bid).toBe(2);
  });

  it("lists symbols and venues, and replaces everything on a snapshot", () => {
    const { store, frame } = manualStore();
    const onList = vi.fn();
    store.subscribeSymbols(onList);
    store.apply("SOL", entry("gate", "1", "2"));
    store.replaceAll({ BTC: { okx: entry("okx", "1", "2") }, ETH: { binance: entry("binance", "1", "2") } });
    frame();
    expect(store.symbols()).toEqual(["BTC", "ETH"]);
    expect(store.venues()).toEqual(["binance", "okx"]);
    expect(onList).toHaveBeenCalledTimes(1);
  });

  it("renders at most once per minimum interval when asked to", () => {
    vi.useFakeTimers();
    try {
      const store = new PriceStore((flush) => flush(), 50);
      const listener = vi.fn();
      store.subscribe("BTC", listener);
      store.apply("BTC", entry("binance", "1", "2"));
      expect(listener).toHaveBeenCalledTimes(1); // the first render is immediate
      store.apply("BTC", entry("binance", "1.1", "2"));
      store.apply("BTC", entry("binance", "1.2", "2"));
      expect(listener).toHaveBeenCalledTimes(1);
      vi.advanceTimersByTime(60);
      expect(listener).toHaveBeenCalledTimes(2);
      expect(store.row("BTC").binance?.bid).toBe(1.2);
    } finally {
      vi.useRealTimers();
    }
  });

  it("measures latency after the render frame", () => {
    const { store, frame } = manualStore();
    store.apply("BTC", entry("binance", "1", "2", { receipt_timestamp: Date.now() - 50 }));
    frame(); // flush
    expect(store.stats.latencies).toHaveLength(0);
    frame(); // the next frame: rendered
    expect(store.stats.latencies[0]).toBeGreaterThanOrEqual(50);
    expect(store.stats.renderLatencies).toHaveLength(1);
  });

  it("estimates the server clock from the freshest stamp", () => {
    const { store } = manualStore();
    store.observeServerNow(Date.now() + 5_000 - 30);
    store.observeServerNow(Date.now() + 5_000);
    store.observeServerNow(Date.now() + 5_000 - 80);
    expect(store.clockOffsetMs).toBeGreaterThan(4_990);
    expect(store.clockOffsetMs).toBeLessThanOrEqual(5_000);
  });
});

describe("percentile", () => {
  it("is nearest-rank", () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
  });
});
