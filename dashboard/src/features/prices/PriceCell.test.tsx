import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { entry } from "../../test/util";
import { bestVenues } from "./best";
import { PriceCell } from "./PriceCell";

describe("PriceCell", () => {
  it("shows bid, ask, mid and age in monospace cells", () => {
    render(<PriceCell entry={entry("okx", "86412.30", "86412.40")} ageMs={1500} stale={false} bestBid bestAsk={false} showMid />);
    const cell = screen.getByTestId("price-cell");
    expect(cell.textContent).toContain("86412.3");
    expect(cell.textContent).toContain("86412.4");
    expect(cell.textContent).toContain("1.5s");
    expect(cell.dataset.state).toBe("fresh");
    expect(cell.querySelector(".bid")?.getAttribute("data-best")).toBe("true");
    expect(cell.querySelector(".ask")?.hasAttribute("data-best")).toBe(false);
  });

  it("greys stale quotes and marks crossed books", () => {
    render(<PriceCell entry={entry("okx", "101", "100", { crossed: true })} ageMs={9000} stale bestBid={false} bestAsk={false} showMid={false} />);
    const cell = screen.getByTestId("price-cell");
    expect(cell.className).toContain("stale");
    expect(cell.className).toContain("crossed");
    expect(cell.title).toContain("CROSSED");
  });

  it("flashes the side that changed, in the direction it moved", () => {
    const first = entry("okx", "100", "101");
    const { rerender } = render(<PriceCell entry={first} ageMs={0} stale={false} bestBid={false} bestAsk={false} showMid />);
    rerender(<PriceCell entry={{ ...first, bid: 100.5 }} ageMs={0} stale={false} bestBid={false} bestAsk={false} showMid />);
    const cell = screen.getByTestId("price-cell");
    expect((cell.querySelector(".bid") as HTMLElement).dataset.flash).toBe("up");
    expect((cell.querySelector(".ask") as HTMLElement).dataset.flash).toBeUndefined();
    rerender(<PriceCell entry={{ ...first, bid: 100.5, ask: 100.9 }} ageMs={0} stale={false} bestBid={false} bestAsk={false} showMid />);
    expect((cell.querySelector(".ask") as HTMLElement).dataset.flash).toBe("down");
  });
});

describe("bestVenues", () => {
  const row = {
    a: entry("a", "100", "101"),
    b: entry("b", "100.5", "100.8"),
    c: entry("c", "102", "101.5", { crossed: true }),
    d: entry("d", "103", "99"),
  };
  it("picks the highest bid and lowest ask among usable shown venues", () => {
    expect(bestVenues(row, ["a", "b", "c"], () => true)).toEqual({ bid: "b", ask: "b" });
    expect(bestVenues(row, ["a", "b", "d"], (e) => e.venue !== "d")).toEqual({ bid: "b", ask: "b" });
    expect(bestVenues(row, ["a", "d"], () => true)).toEqual({ bid: "d", ask: "d" });
  });
  it("says nothing with fewer than two usable venues", () => {
    expect(bestVenues(row, ["a", "c"], () => true)).toEqual({ bid: null, ask: null });
  });
});
