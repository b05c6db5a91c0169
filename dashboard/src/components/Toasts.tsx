import { useEffect, useRef, useState } from "react";
import type { OpportunityOut } from "../api/types";
import { useLive } from "../live/context";
import { fmtFractionPct, fmtPrice, fmtQty } from "../lib/format";
import { href } from "../lib/route";
import { useValue } from "../lib/valueStore";

const SHOW_MS = 8_000;
const MAX_VISIBLE = 4;

function beep(): void {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.25);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.25);
    osc.onended = () => void ctx.close();
  } catch {
    // no audio device: the toast is enough
  }
}

export function useSoundSetting(): [boolean, (on: boolean) => void] {
  const [on, setOn] = useState(() => localStorage.getItem("arbstream.sound") === "1");
  return [
    on,
    (value: boolean) => {
      localStorage.setItem("arbstream.sound", value ? "1" : "0");
      setOn(value);
    },
  ];
}

/**
 * Announces each new alert once. Alerts are what the worker emits on `opportunities` after its
 * cooldown, so the cooldown is respected by construction: the dashboard never invents alerts from
 * price moves, and never replays the snapshot's backlog.
 */
export function Toasts({ sound }: { sound: boolean }) {
  const live = useLive();
  const alerts = useValue(live.alerts);
  const [visible, setVisible] = useState<{ alert: OpportunityOut; until: number }[]>([]);
  const announced = useRef(new Set<string>());

  useEffect(() => {
    const fresh = alerts.filter((a) => !announced.current.has(a.event_id));
    if (fresh.length === 0) return;
    for (const a of fresh) announced.current.add(a.event_id);
    const until = Date.now() + SHOW_MS;
    setVisible((v) => [...fresh.map((alert) => ({ alert, until })), ...v].slice(0, MAX_VISIBLE));
    if (sound) beep();
  }, [alerts, sound]);

  useEffect(() => {
    if (visible.length === 0) return;
    const timer = setInterval(() => setVisible((v) => v.filter((t) => t.until > Date.now())), 500);
    return () => clearInterval(timer);
  }, [visible.length]);

  return (
    <div className="toasts" aria-live="polite">
      {visible.map(({ alert }) => (
        <a
          key={alert.event_id}
          className="toast"
          data-testid="alert-toast"
          href={href({ screen: "symbol", symbol: alert.symbol })}
          onClick={() => setVisible((v) => v.filter((t) => t.alert.event_id !== alert.event_id))}
        >
          <div className="toast-title">
            <strong>{alert.symbol}</strong> buy {alert.buy.venue} → sell {alert.sell.venue}
            {alert.cooldown_broken && <span className="tag warn">cooldown broken</span>}
          </div>
          <div className="num">
            net {fmtFractionPct(alert.net_spread)} · gross {fmtFractionPct(alert.gross_spread)} · size{" "}
            {fmtQty(alert.size)} · {fmtPrice(alert.buy.price)} → {fmtPrice(alert.sell.price)}
          </div>
        </a>
      ))}
    </div>
  );
}
