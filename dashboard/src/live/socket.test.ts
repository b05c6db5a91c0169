import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LiveSocket, type ServerMessage, type SocketStatus } from "./socket";

class FakeSocket {
  static OPEN = 1;
  static instances: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  push(type: string, seq: number, data: unknown = {}) {
    this.onmessage?.({ data: JSON.stringify({ type, seq, data }) });
  }
  drop(code = 1011) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "gone" });
  }
}

function setup() {
  const messages: ServerMessage[] = [];
  let status: SocketStatus | undefined;
  const socket = new LiveSocket({
    url: "ws://api/ws",
    subscription: () => ({ channels: ["prices"] }),
    onMessage: (m) => messages.push(m),
    onStatus: (s) => {
      status = s;
    },
    WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    random: () => 0.5,
  });
  socket.start();
  return { socket, messages, status: () => status as SocketStatus, ws: () => FakeSocket.instances.at(-1) as FakeSocket };
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.instances = [];
});
afterEach(() => {
  vi.useRealTimers();
});

describe("LiveSocket", () => {
  it("subscribes on open and is live once the snapshot arrives", () => {
    const { ws, status, socket } = setup();
    expect(status().state).toBe("connecting");
    ws().open();
    expect(ws().sent).toEqual([{ op: "subscribe", channels: ["prices"] }]);
    ws().push("market_summary", 1);
    ws().push("snapshot", 2);
    expect(status().state).toBe("live");
    ws().push("price_update", 3);
    expect(socket.getStatus().seq).toBe(3);
    expect(status().gaps).toBe(0);
    socket.stop();
  });

  it("detects a sequence gap and asks for a resync", () => {
    const { ws, status, messages, socket } = setup();
    ws().open();
    ws().push("snapshot", 1);
    ws().push("price_update", 2);
    ws().push("price_update", 5); // 3 and 4 were dropped for us
    expect(status().gaps).toBe(1);
    expect(status().state).toBe("resyncing");
    expect(ws().sent).toEqual([{ op: "subscribe", channels: ["prices"] }, { op: "resync" }]);
    ws().push("price_update", 6); // still waiting for the snapshot: no second gap
    ws().push("snapshot", 7);
    expect(status().state).toBe("live");
    expect(status().gaps).toBe(1);
    expect(status().snapshots).toBe(2);
    expect(messages.map((m) => m.seq)).toEqual([1, 2, 5, 6, 7]);
    socket.stop();
  });

  it("reconnects with backoff after the server drops the connection, then resubscribes", () => {
    const { ws, status, socket } = setup();
    const first = ws();
    first.open();
    first.push("snapshot", 1);
    first.drop();
    expect(status().state).toBe("reconnecting");
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1_000);
    expect(FakeSocket.instances).toHaveLength(2);
    ws().open();
    expect(ws().sent).toEqual([{ op: "subscribe", channels: ["prices"] }]);
    ws().push("snapshot", 1); // sequence numbers restart per connection
    expect(status().state).toBe("live");
    expect(status().connects).toBe(2);
    expect(status().gaps).toBe(0);
    socket.stop();
  });

  it("backs off exponentially up to the cap while the API is down", () => {
    const { ws, socket } = setup();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      ws().drop();
      const before = FakeSocket.instances.length;
      let waited = 0;
      while (FakeSocket.instances.length === before) {
        vi.advanceTimersByTime(50);
        waited += 50;
      }
      delays.push(waited);
    }
    expect(delays[1]).toBeGreaterThan(delays[0] as number);
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000);
    socket.stop();
  });

  it("reconnects when a resync snapshot never comes", () => {
    const { ws, socket } = setup();
    ws().open();
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(5_100);
    vi.advanceTimersByTime(1_000);
    expect(FakeSocket.instances).toHaveLength(2);
    socket.stop();
  });
});
