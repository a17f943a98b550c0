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
// new ticket, and resumes after the last event id, so no change is lost or applied twice. A
// credential the proxy refuses (401, 403) ends the following.

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

export function followStatus({ proxyUrl, credential, onChange, after = 0 }) {
  const base = proxyUrl.replace(/\/$/, "");
  let last = after;
  let delay = FIRST_DELAY_MS;
  let source = null;
  let timer = null;
  let stopped = false;

  function stop() {
    stopped = true;
    clearTimeout(timer);
    if (source) source.close();
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
      if (res.status === 401 || res.status === 403) return stop();
      if (!res.ok) throw new Error("ticket: HTTP " + res.status);
      const { ticket } = await res.json();
      if (stopped) return;
      source = new EventSource(`${base}/events/stream?ticket=${encodeURIComponent(ticket)}&after=${last}`);
      source.onopen = () => { delay = FIRST_DELAY_MS; };
      source.addEventListener("status", (ev) => {
        const id = Number(ev.lastEventId);
        if (!(id > last)) return;
        last = id;
        try { onChange(JSON.parse(ev.data)); } catch (e) { console.error(e); }
      });
      source.onerror = () => {
        // The browser would retry with the same (soon expired) ticket: take over.
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
