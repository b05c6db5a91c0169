import { describe, expect, it } from "vitest";
import { cmpDecimal, decText, fmtAge, fmtFractionPct, fmtPct, fmtPrice, fmtQty } from "./format";

describe("format (display only)", () => {
  it("keeps the API's decimal strings, trimmed to readable digits", () => {
    expect(fmtPrice("86412.30")).toBe("86412.30");
    expect(fmtPrice("86412.3012345")).toBe("86412.301");
    expect(fmtPrice("0.0000111575")).toBe("0.0000111575");
    expect(fmtPrice("0.00001115759999")).toBe("0.0000111575");
    expect(fmtPrice("123456789.5")).toBe("123456789");
    expect(fmtPrice(null)).toBe("—");
  });

  it("formats the API's JSON numbers like the strings they replace, never in exponent notation", () => {
    expect(fmtPrice(86412.3)).toBe("86412.3");
    expect(fmtPrice(0.0000112)).toBe("0.0000112");
    expect(decText(1.12e-8)).toBe("0.0000000112");
    expect(decText(-0.5)).toBe("-0.5");
    expect(fmtPct(0.123456)).toBe("0.123 %");
    expect(cmpDecimal(2, "10")).toBeLessThan(0);
  });

  it("formats fractions and percentages", () => {
    expect(fmtFractionPct("0.0012")).toBe("0.120 %");
    expect(fmtPct("1.5")).toBe("1.500 %");
    expect(fmtQty("150000")).toBe("150.0k");
  });

  it("formats ages", () => {
    expect(fmtAge(250)).toBe("250ms");
    expect(fmtAge(1500)).toBe("1.5s");
    expect(fmtAge(65_000)).toBe("1m5s");
    expect(fmtAge(null)).toBe("—");
  });

  it("compares decimal strings, missing values last", () => {
    expect(cmpDecimal("2", "10")).toBeLessThan(0);
    expect(cmpDecimal(null, "1")).toBeGreaterThan(0);
  });
});
