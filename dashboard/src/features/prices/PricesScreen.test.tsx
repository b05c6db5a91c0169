import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { SpreadsOut, SymbolSpreadRow } from "../../api/types";
import { apiRoutes } from "../../test/setup";
import { entry, renderWithLive, testLive } from "../../test/util";
import { PricesScreen } from "./PricesScreen";

function seeded() {
  const live = testLive();
  live.store.replaceAll({
    BTC: { binance: entry("binance", "100", "101"), okx: entry("okx", "102", "103") },
    ETH: { binance: entry("binance", "10", "11"), okx: entry("okx", "9", "9.5") },
    SOL: { binance: entry("binance", "1", "1.1") },
  });
  return live;
}

const rows = () => screen.getAllByTestId("price-row").map((r) => r.dataset.symbol);

describe("PricesScreen", () => {
  it("renders the symbol x venue matrix with the best bid and ask highlighted", () => {
    renderWithLive(<PricesScreen />, seeded());
    expect(rows()).toEqual(["BTC", "ETH", "SOL"]);
    const btc = screen.getAllByTestId("price-row")[0] as HTMLElement;
    const okx = within(btc).getAllByTestId("price-cell").find((c) => c.dataset.venue === "okx") as HTMLElement;
    const binance = within(btc).getAllByTestId("price-cell").find((c) => c.dataset.venue === "binance") as HTMLElement;
    expect(okx.querySelector(".bid")?.getAttribute("data-best")).toBe("true");
    expect(binance.querySelector(".ask")?.getAttribute("data-best")).toBe("true");
  });

  it("filters by search", () => {
    renderWithLive(<PricesScreen />, seeded());
    fireEvent.change(screen.getByTestId("price-search"), { target: { value: "et" } });
    expect(rows()).toEqual(["ETH"]);
  });

  it("hides a venue's column with the venue filter", () => {
    renderWithLive(<PricesScreen />, seeded());
    const okxChip = within(screen.getByTestId("venue-filter")).getByText("okx");
    fireEvent.click(okxChip);
    expect(okxChip.getAttribute("aria-pressed")).toBe("false");
    const venuesShown = screen.getAllByTestId("price-cell").map((c) => c.dataset.venue);
    expect(venuesShown).not.toContain("okx");
    expect(screen.getByTestId("prices-count").textContent).toContain("1/2 venues");
  });

  it("sorts by a column", () => {
    renderWithLive(<PricesScreen />, seeded());
    const header = (id: string) => document.querySelector(`[data-column="${id}"]`) as HTMLElement;
    fireEvent.click(header("symbol")); // asc -> desc
    expect(rows()).toEqual(["SOL", "ETH", "BTC"]);
    fireEvent.click(header("venue:okx")); // numbers sort high first; symbols without an okx quote last
    expect(rows()).toEqual(["BTC", "ETH", "SOL"]);
    fireEvent.click(header("venue:okx"));
    expect(rows()).toEqual(["ETH", "BTC", "SOL"]);
  });

  it("updates a cell live without touching other rows", () => {
    const live = seeded();
    renderWithLive(<PricesScreen />, live);
    const eth = screen.getAllByTestId("price-row")[1] as HTMLElement;
    const before = eth.innerHTML;
    act(() => live.store.apply("BTC", entry("binance", "100.7", "101")));
    const btc = screen.getAllByTestId("price-row")[0] as HTMLElement;
    expect(btc.textContent).toContain("100.7");
    expect(eth.innerHTML).toBe(before);
  });
});

function spread(symbol: string, net: string | null, buy = "binance", sell = "okx"): SymbolSpreadRow {
  const pair = net !== null;
  return {
    symbol,
    quote_group: "USDT",
    usable_venues: pair ? 2 : 1,
    buy_exchange: pair ? buy : null,
    sell_exchange: pair ? sell : null,
    buy_price: pair ? 100 : null,
    sell_price: pair ? 100.35 : null,
    spread: pair ? 0.35 : null,
    spread_percentage: pair ? 0.35 : null,
    net_spread_percentage: net === null ? null : Number(net),
    size: pair ? 1 : null,
    notional: pair ? 100 : null,
    buy_fee: pair ? 0.0005 : null,
    sell_fee: pair ? 0.0005 : null,
    buy_instrument_id: pair ? `${symbol}-USDT-PERP@${buy}` : null,
    sell_instrument_id: pair ? `${symbol}-USDT-PERP@${sell}` : null,
  };
}

describe("PricesScreen spread column", () => {
  const header = (id: string) => document.querySelector(`[data-column="${id}"]`) as HTMLElement;
  const spreadOf = (symbol: string) =>
    within(document.querySelector(`[data-testid="price-row"][data-symbol="${symbol}"]`) as HTMLElement).getByTestId("spread-cell");

  function serveSpreads(rows: SymbolSpreadRow[]) {
    const body: SpreadsOut = { spreads: rows, total: rows.length, offset: 0, limit: null, timestamp: "2026-12-06T10:00:00.000Z" };
    apiRoutes.set("/api/spreads", () => body);
  }

  it("shows the API's net spread per symbol, coloured by level", async () => {
    serveSpreads([spread("ETH", "0.25", "okx", "binance"), spread("BTC", "-0.12"), spread("SOL", null)]);
    renderWithLive(<PricesScreen />, seeded());
    await waitFor(() => expect(spreadOf("ETH").textContent).toContain("0.250 %"));
    expect(spreadOf("ETH").textContent).toContain("okx→binance");
    expect(spreadOf("ETH").dataset.level).toBe("warm");
    expect(spreadOf("BTC").textContent).toContain("-0.120 %");
    expect(spreadOf("BTC").dataset.level).toBe("neg");
    expect(spreadOf("SOL").textContent).toBe("—");
    expect(spreadOf("SOL").title).toContain("1 usable venue(s)");
  });

  it("sorts by net spread, best first, symbols without a pair last either way", async () => {
    serveSpreads([spread("SOL", "0.6"), spread("ETH", null), spread("BTC", "-0.12")]);
    renderWithLive(<PricesScreen />, seeded());
    await waitFor(() => expect(spreadOf("SOL").dataset.level).toBe("hot"));
    fireEvent.click(header("spread"));
    expect(rows()).toEqual(["SOL", "BTC", "ETH"]);
    fireEvent.click(header("spread"));
    expect(rows()).toEqual(["BTC", "SOL", "ETH"]);
  });
});
