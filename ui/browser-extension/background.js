// Worktrail browser extension: tells the local Worktrail agent which tab is in front.
//
// One code base for Chromium-family browsers (service worker) and Firefox (event page): both
// expose the promise-based WebExtension API, as `chrome` and `browser`.
//
// What is sent, and when: the active tab's URL and title of the *focused, normal* window — when
// the tab changes, when a window gains or loses the focus, and every 30 seconds as a heartbeat —
// or `null` when no such tab is in front (another application, a private window, a browser page).
// The manifest's `"incognito": "not_allowed"` keeps the browser from ever running this code in a
// private window; the `incognito` checks below are a second fence. No page content is read: there
// are no content scripts. Reports go only to the agent on 127.0.0.1, with the token it gave at
// pairing; the agent decides (by the company's policy) what of the URL is kept.

const api = globalThis.browser ?? globalThis.chrome;
const HEARTBEAT = "heartbeat";

async function settings() {
  const stored = await api.storage.local.get(["port", "token"]);
  let port = stored.port;
  if (!port) {
    const defaults = await (await fetch(api.runtime.getURL("agent.json"))).json();
    port = defaults.port;
  }
  return { port, token: stored.token };
}

async function post(port, path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  return fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
}

// Asks the agent for a token; it answers only while the employee has opened a pairing window.
async function pair(port) {
  const resp = await post(port, "/v1/pair", {});
  if (!resp.ok) {
    const err = await resp.json().catch(() => ({}));
    await api.storage.local.set({ lastError: err.code ?? `http_${resp.status}` });
    return null;
  }
  const { token } = await resp.json();
  await api.storage.local.set({ token, lastError: null, pairedAt: Date.now() });
  return token;
}

// The tab in front, or null when none of ours is.
async function frontTab() {
  const win = await api.windows.getLastFocused({ windowTypes: ["normal"] }).catch(() => null);
  if (!win || !win.focused || win.incognito) return null;
  const [tab] = await api.tabs.query({ active: true, windowId: win.id });
  if (!tab || tab.incognito || !tab.url) return null;
  return { url: tab.url, title: tab.title ?? null };
}

let sending = Promise.resolve();

// Reports serialised, so the agent sees them in the order the browser saw the changes.
function report() {
  sending = sending.then(sendReport).catch(async (e) => {
    await api.storage.local.set({ lastError: `unreachable: ${e.message ?? e}` });
  });
  return sending;
}

async function sendReport() {
  const { port, token: stored } = await settings();
  const token = stored ?? (await pair(port));
  if (!token) return;
  const resp = await post(port, "/v1/tab", { tab: await frontTab() }, token);
  if (resp.status === 401) {
    // Forgotten by the agent (unpaired there): pair again when it allows.
    await api.storage.local.remove("token");
    if (await pair(port)) await report();
    return;
  }
  await api.storage.local.set({ lastReportAt: Date.now(), lastError: resp.ok ? null : `http_${resp.status}` });
}

api.tabs.onActivated.addListener(() => report());
api.tabs.onUpdated.addListener((_id, change, tab) => {
  if (tab.active && (change.url !== undefined || change.title !== undefined || change.status === "complete")) {
    report();
  }
});
api.windows.onFocusChanged.addListener(() => report());
api.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === HEARTBEAT) report();
});
api.runtime.onMessage.addListener((msg) => {
  if (msg === "report-now") return report();
  return undefined;
});

// Every start of the worker (browser start, install, wake-up): keep the heartbeat and say hello.
api.alarms.get(HEARTBEAT).then((a) => {
  if (!a) api.alarms.create(HEARTBEAT, { periodInMinutes: 0.5 });
});
report();
