import { useLive } from "../live/context";
import { useNow } from "../lib/clock";
import { fmtAge } from "../lib/format";
import { useValue } from "../lib/valueStore";

const LABEL = {
  connecting: "connecting",
  live: "live",
  resyncing: "resyncing",
  reconnecting: "reconnecting",
  stopped: "stopped",
} as const;

/** The dashboard's own WebSocket: state, sequence number, gaps and resyncs. Never a fixed "Live". */
export function ConnectionIndicator() {
  const live = useLive();
  const status = useValue(live.status);
  const now = useNow();
  // seq / last message are sampled on the clock, not re-rendered per message.
  const current = live.socket?.getStatus() ?? status;
  const silentMs = current.lastMessageAt === null ? null : now - current.lastMessageAt;
  const retryIn = status.retryAt === null ? null : Math.max(0, status.retryAt - now);
  const title = [
    `WebSocket: ${status.state}`,
    `sequence ${current.seq}`,
    `gaps ${status.gaps}, snapshots ${status.snapshots}, connections ${status.connects}`,
    status.lastError ? `last error: ${status.lastError}` : "",
  ]
    .filter(Boolean)
    .join("\n");
  return (
    <div className={`conn conn-${status.state}`} data-testid="ws-indicator" data-state={status.state} title={title}>
      <span className="dot" />
      <span>{LABEL[status.state]}</span>
      {status.state === "reconnecting" && retryIn !== null && <span className="muted"> in {fmtAge(retryIn)}</span>}
      {status.state === "live" && silentMs !== null && silentMs > 3000 && (
        <span className="muted"> · quiet {fmtAge(silentMs)}</span>
      )}
      <span className="muted num"> #{current.seq}</span>
      {status.gaps > 0 && <span className="muted"> · {status.gaps} resync</span>}
    </div>
  );
}
