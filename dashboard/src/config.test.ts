import { describe, expect, it } from "vitest";
import { resolveConfig } from "./config";

const loc = (href: string) => {
  const u = new URL(href);
  return { protocol: u.protocol, host: u.host, pathname: u.pathname, search: u.search };
};

describe("resolveConfig", () => {
  it("derives API and WebSocket from where the page was served", () => {
    expect(resolveConfig(loc("http://10.0.0.5:8000/"), undefined)).toEqual({
      apiBase: "http://10.0.0.5:8000",
      wsUrl: "ws://10.0.0.5:8000/ws",
    });
  });

  it("uses wss behind https and keeps a sub-path", () => {
    expect(resolveConfig(loc("https://trading.example/arb/index.html"), undefined)).toEqual({
      apiBase: "https://trading.example/arb",
      wsUrl: "wss://trading.example/arb/ws",
    });
  });

  it("is overridable: query string beats injected config beats build env", () => {
    const injected = { apiBase: "http://injected:1" };
    expect(resolveConfig(loc("http://page/"), injected, { api: "http://env:2" }).apiBase).toBe("http://injected:1");
    expect(resolveConfig(loc("http://page/?api=http://q:3/"), injected).apiBase).toBe("http://q:3");
    expect(resolveConfig(loc("http://page/?api=http://q:3"), undefined).wsUrl).toBe("ws://q:3/ws");
    expect(resolveConfig(loc("http://page/?ws=ws://other/ws"), undefined).wsUrl).toBe("ws://other/ws");
  });
});
