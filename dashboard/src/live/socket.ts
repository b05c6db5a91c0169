/**
 * The dashboard's one WebSocket to the API's `/ws`: connect, subscribe, watch the per-connection
 * sequence numbers, resync on a gap, reconnect with capped exponential backoff and jitter.
 *
 * Every server message is `{"type", "seq", "data"}`; `seq` increases by one per message on a
 * connection, a skipped number means the server dropped something for us (slow client) and
 * we ask for a fresh snapshot (`{"op": "resync"}`). No React here, so it is tested directly.
 */

export interface ServerMessage {
  type: string;
  seq: number;
  data: unknown;
}

export type ConnectionState = "connecting" | "live" | "resyncing" | "reconnecting" | "stopped";

export interface SocketStatus {
  state: ConnectionState;
  /** Last sequence number received on the current connection. */
  seq: number;
  /** Gaps detected since the page loaded. */
  gaps: number;
  /** Snapshots received (initial ones and resyncs). */
  snapshots: number;
  /** Connections opened since the page loaded (1 = never reconnected). */
  connects: number;
  /** Local time of the last message, ms. */
  lastMessageAt: number | null;
  /** When the next connection attempt is due (state "reconnecting"), local ms. */
  retryAt: number | null;
  lastError: string | null;
}

export interface SocketOptions {
  url: string;
  /** The subscription sent on open and on every resync. */
  subscription: () => Record<string, unknown>;
  onMessage: (message: ServerMessage) => void;
  onStatus: (status: SocketStatus) => void;
  WebSocketImpl?: typeof WebSocket;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A resync whose snapshot does not arrive within this time reconnects. */
  resyncTimeoutMs?: number;
  /** No message at all for this long (the server pushes summaries every second) reconnects. */
  silenceTimeoutMs?: number;
  random?: () => number;
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private status: SocketStatus = {
    state: "connecting",
    seq: 0,
    gaps: 0,
    snapshots: 0,
    connects: 0,
    lastMessageAt: null,
    retryAt: null,
    lastError: null,
  };
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private resyncTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  /** While resyncing, sequence checks are suspended until the snapshot arrives. */
  private awaitingSnapshot = false;
  private readonly opts: Required<Omit<SocketOptions, "WebSocketImpl">> & { WebSocketImpl: typeof WebSocket };

  constructor(options: SocketOptions) {
    this.opts = {
      backoffInitialMs: 500,
      backoffMaxMs: 10_000,
      resyncTimeoutMs: 5_000,
      silenceTimeoutMs: 15_000,
      random: Math.random,
      WebSocketImpl: options.WebSocketImpl ?? WebSocket,
      ...options,
    } as LiveSocket["opts"];
  }

  start(): void {
    this.stopped = false;
    this.connect();
    this.watchdog = setInterval(() => this.checkSilence(), 1_000);
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.watchdog = null;
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000, "dashboard closed");
    this.update({ state: "stopped", retryAt: null });
  }

  /** Change the subscription (re-sent now; the server answers with a new snapshot). */
  resubscribe(): void {
    this.requestSnapshot("subscribe");
  }

  getStatus(): SocketStatus {
    return this.status;
  }

  send(payload: Record<string, unknown>): void {
    if (this.ws !== null && this.ws.readyState === this.opts.WebSocketImpl.OPEN) {
      this.ws.send(JSON.stringify(payload));
    }
  }

  private connect(): void {
    this.clearTimers();
    this.update({ state: "connecting", retryAt: null });
    let ws: WebSocket;
    try {
      ws = new this.opts.WebSocketImpl(this.opts.url);
    } catch (error) {
      this.scheduleReconnect(String(error));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.update({ connects: this.status.connects + 1, seq: 0, lastError: null });
      this.requestSnapshot("subscribe");
    };
    ws.onmessage = (event: MessageEvent) => {
      if (this.ws !== ws) return;
      this.receive(event.data);
    };
    ws.onerror = () => {
      if (this.ws !== ws) return;
      this.update({ lastError: "WebSocket error" });
    };
    ws.onclose = (event: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.stopped) this.scheduleReconnect(`closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
    };
  }

  private receive(raw: unknown): void {
    let message: ServerMessage;
    try {
      message = JSON.parse(String(raw)) as ServerMessage;
    } catch {
      this.update({ lastError: "malformed message from server" });
      return;
    }
    const now = Date.now();
    if (typeof message.seq === "number") {
      const expected = this.status.seq + 1;
      if (message.type === "snapshot") {
        this.awaitingSnapshot = false;
        if (this.resyncTimer !== null) clearTimeout(this.resyncTimer);
        this.resyncTimer = null;
        this.update({ seq: message.seq, snapshots: this.status.snapshots + 1, state: "live", lastMessageAt: now });
      } else if (!this.awaitingSnapshot && this.status.seq > 0 && message.seq !== expected) {
        // Something was dropped for us: what we hold may be wrong. Ask for a fresh snapshot.
        this.update({ gaps: this.status.gaps + 1, seq: message.seq, lastMessageAt: now });
        this.requestSnapshot("resync");
      } else {
        // The hot path (thousands per second): no new status object, no notification.
        this.status.seq = message.seq;
        this.status.lastMessageAt = now;
      }
    } else {
      this.status.lastMessageAt = now;
    }
    this.opts.onMessage(message);
  }

  /** `subscribe` (on open, or a new subscription) and `resync` (after a gap) both get a snapshot. */
  private requestSnapshot(op: "subscribe" | "resync"): void {
    this.awaitingSnapshot = true;
    this.update({ state: this.status.snapshots === 0 || this.status.seq === 0 ? "connecting" : "resyncing" });
    this.send(op === "subscribe" ? { op, ...this.opts.subscription() } : { op });
    if (this.resyncTimer !== null) clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      if (this.awaitingSnapshot && !this.stopped) this.reconnectNow("no snapshot after resubscribing");
    }, this.opts.resyncTimeoutMs);
  }

  private checkSilence(): void {
    const last = this.status.lastMessageAt;
    if (this.status.state === "live" && last !== null && Date.now() - last > this.opts.silenceTimeoutMs) {
      this.reconnectNow("no message from the server");
    }
  }

  private reconnectNow(reason: string): void {
    const ws = this.ws;
    this.ws = null;
    ws?.close(4000, reason);
    this.scheduleReconnect(reason);
  }

  private scheduleReconnect(reason: string): void {
    this.clearTimers();
    this.awaitingSnapshot = false;
    const base = Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** this.attempt);
    const delay = Math.round(base / 2 + (this.opts.random() * base) / 2);
    this.attempt += 1;
    this.update({ state: "reconnecting", retryAt: Date.now() + delay, lastError: reason });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.resyncTimer !== null) clearTimeout(this.resyncTimer);
    this.retryTimer = null;
    this.resyncTimer = null;
  }

  private update(patch: Partial<SocketStatus>): void {
    this.status = { ...this.status, ...patch };
    this.opts.onStatus(this.status);
  }
}
