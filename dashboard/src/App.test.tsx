import { act, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { DemoBanner, isDemo } from "./App";
import { ConnectionIndicator } from "./components/ConnectionIndicator";
import { apiRoutes } from "./test/setup";
import { renderWithLive, testLive } from "./test/util";

describe("DemoBanner", () => {
  it("is shown only when the API says the data is simulated", async () => {
    expect(isDemo({ demo: true })).toBe(true);
    expect(isDemo({ demo: false })).toBe(false);
    expect(isDemo(undefined)).toBe(false);
    apiRoutes.set("/api/info", () => ({ service: "arbstream", demo: true }));
    renderWithLive(<DemoBanner />);
    await waitFor(() => expect(screen.getByTestId("demo-banner").textContent).toContain("DEMO"));
  });

  it("is absent for real data", async () => {
    let asked = false;
    apiRoutes.set("/api/info", () => {
      asked = true;
      return { service: "arbstream", demo: false };
    });
    renderWithLive(<DemoBanner />);
    await waitFor(() => expect(asked).toBe(true));
    expect(screen.queryByTestId("demo-banner")).toBeNull();
  });
});

describe("ConnectionIndicator", () => {
  it("shows the socket's real state, not a fixed Live", () => {
    const live = testLive();
    renderWithLive(<ConnectionIndicator />, live);
    const el = screen.getByTestId("ws-indicator");
    expect(el.dataset.state).toBe("connecting");
    act(() => live.status.set({ ...live.status.get(), state: "reconnecting", retryAt: Date.now() + 2000, lastError: "closed (1006)" }));
    expect(el.dataset.state).toBe("reconnecting");
    expect(el.textContent).toContain("reconnecting");
    expect(el.title).toContain("closed (1006)");
    act(() => live.status.set({ ...live.status.get(), state: "live", gaps: 1, snapshots: 2 }));
    expect(el.textContent).toContain("live");
    expect(el.textContent).toContain("1 resync");
  });
});
