import { act, fireEvent, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
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
