// waba-onboard live status: follows the proxy's stream of the changes Meta announces by
// webhook (review decisions, shares, phone quality and names, ...).
//
//   import { followStatus } from "waba-onboard/stream";
//   const follow = followStatus({ proxyUrl, credential, onChange: (change) => { ... } });
//   follow.stop();
//
// EventSource cannot send headers, so each connection first asks POST /events/ticket for a
// short-lived ticket with the credential (the admin token, a signup token or a code-flow
// session). After a drop it reconnects with backoff (1 s doubling to 30 s, with jitter) and a
// new ticket, and resumes after the last event id, so no change is lost or applied twice. The
// backoff starts over once a connection delivered a change or stayed up a while, so a stream
// that opens and drops at once does not reconnect every second. A credential the proxy refuses
// (401, 403) ends the following, and `onEnd` is told why.

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const HEALTHY_MS = 30000;

export function followStatus({ proxyUrl, credential, onChange, onEnd, after = 0 }) {
  const base = proxyUrl.replace(/\/$/, "");
  let last = after;
  let delay = FIRST_DELAY_MS;
  let source = null;
  let timer = null;
  let stopped = false;
  let healthy = null;

  function stop() {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(healthy);
    if (source) source.close();
  }

  function refused(status) {
    stop();
    if (onEnd) onEnd({ reason: "refused", status });
  }

  function retry() {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(connect, delay * (0.75 + Math.random() / 2));
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }

  async function connect() {
    if (stopped) return;
    try {
      const res = await fetch(base + "/events/ticket", {
        method: "POST",
        headers: { Authorization: "Bearer " + credential },
      });
      if (res.status === 401 || res.status === 403) return refused(res.status);
      if (!res.ok) throw new Error("ticket: HTTP " + res.status);
      const { ticket } = await res.json();
      if (stopped) return;
      source = new EventSource(`${base}/events/stream?ticket=${encodeURIComponent(ticket)}&after=${last}`);
      source.onopen = () => {
        clearTimeout(healthy);
        healthy = setTimeout(() => { delay = FIRST_DELAY_MS; }, HEALTHY_MS);
      };
      source.addEventListener("status", (ev) => {
        delay = FIRST_DELAY_MS;
        const id = Number(ev.lastEventId);
        if (!(id > last)) return;
        last = id;
        try { onChange(JSON.parse(ev.data)); } catch (e) { console.error(e); }
      });
      source.onerror = () => {
        // The browser would retry with the same (soon expired) ticket: take over.
        clearTimeout(healthy);
        source.close();
        retry();
      };
    } catch (e) {
      retry();
    }
  }

  connect();
  return { stop };
}
