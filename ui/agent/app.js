// The agent window: enrolment on first run, then the status and the privacy notice. Everything
// comes from the Rust commands; errors arrive as {code, message} and the window picks its words
// by the code (never by the message text), showing the code too so support can refer to it.
"use strict";

const invoke = (cmd, args) => window.__TAURI__.core.invoke(cmd, args);
const $ = (id) => document.getElementById(id);

const MESSAGES = {
  invalid_company_key: "This company key was not accepted. Check it with your administrator: it may be mistyped, revoked or expired.",
  invalid_server_url: "The server address must start with https:// (or http:// on a local network).",
  network: "The server cannot be reached. Check the address and your connection.",
  company_suspended: "Your company's Worktrail account is suspended. Please contact your administrator.",
  trial_expired: "Your company's Worktrail trial has ended. Please contact your administrator.",
  subscription_expired: "Your company's Worktrail subscription has expired. Please contact your administrator.",
  subscription_cancelled: "Your company's Worktrail subscription was cancelled. Please contact your administrator.",
  seat_limit_reached: "Your company has no free seat for another employee. Please contact your administrator.",
  device_revoked: "This computer was removed by your administrator.",
  device_unknown: "The server does not know this computer any more. Connect it again.",
  rate_limited: "The server is busy. Please try again in a minute.",
  deferred: "The server asked to wait a little. Please try again in a minute.",
  not_allowed: "Your company does not allow this.",
  not_enrolled: "This computer is not connected yet.",
  unknown_task: "That task is no longer open. Choose another one.",
};

const STATES = {
  not_enrolled: "Not set up",
  tracking: "Tracking",
  paused: "Paused",
  offline: "Offline",
  blocked: "Stopped",
  loading: "Loading…",
};

function showError(el, err) {
  const code = (err && err.code) || "local";
  const text = MESSAGES[code] || (err && err.message) || String(err);
  el.dataset.code = code;
  el.textContent = text + " ";
  const c = document.createElement("code");
  c.textContent = "(" + code + ")";
  el.appendChild(c);
  el.hidden = false;
}

function clearError(el) {
  el.hidden = true;
  delete el.dataset.code;
  el.textContent = "";
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  const at = new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (s < 60) return `just now (${at})`;
  if (s < 3600) return `${Math.round(s / 60)} min ago (${at})`;
  return at;
}

function render(s) {
  const state = $("state");
  state.dataset.state = s.state;
  state.textContent = STATES[s.state] || s.state;
  $("enroll-screen").hidden = s.enrolled;
  $("status-screen").hidden = !s.enrolled;
  $("privacy-intro").textContent = s.enrolled
    ? "Your company's current policy. Nothing else is recorded, and never what you type."
    : "Until you connect, nothing is recorded. After that your company's policy applies; by default:";
  if (!s.enrolled) return;
  const e = s.enrollment;
  const lines = {
    tracking: "Tracking is on.",
    offline: "Tracking is on. The server cannot be reached; records wait on this computer.",
    paused: "Tracking is paused. Nothing is recorded until you resume.",
    blocked: "Tracking is stopped by the server.",
  };
  $("status-line").textContent = lines[s.state] || "";
  if (s.blocked) showError($("blocked"), s.blocked); else clearError($("blocked"));
  $("company").textContent = e.company_name + (e.email ? ` (${e.email})` : "");
  $("current-app").textContent = s.current_app || (s.capturing ? "nothing active (idle)" : "nothing");
  $("last-sync").textContent = ago(s.queue.last_sync_ms);
  const q = s.queue.records;
  $("queue").textContent = q === 0 ? "nothing" : `${q} record${q === 1 ? "" : "s"}`;
  const pause = $("pause");
  pause.textContent = s.paused ? "Resume tracking" : "Pause tracking";
  pause.disabled = !s.paused && (!s.policy.allow_pause || s.state === "blocked");
  pause.title = s.policy.allow_pause ? "" : MESSAGES.not_allowed;
  renderTasks(s.tasks, s.task);
}

// The task list is rebuilt only when it changes, so an open drop-down is not reset under the
// pointer; the choice shown always follows the agent.
let shownTasks = "";
function renderTasks(tasks, chosen) {
  $("task-row").hidden = tasks.length === 0;
  const select = $("task");
  const key = JSON.stringify(tasks);
  if (key !== shownTasks) {
    shownTasks = key;
    const none = document.createElement("option");
    none.value = "";
    none.textContent = "No particular task";
    select.replaceChildren(none, ...tasks.map((t) => {
      const o = document.createElement("option");
      o.value = t.id;
      o.textContent = `${t.project} · ${t.name}`;
      return o;
    }));
  }
  select.value = chosen || "";
  $("task-row").dataset.task = chosen || "";
}

async function renderNotice() {
  const items = await invoke("notice");
  const list = $("notice");
  list.replaceChildren(...items.map((c) => {
    const li = document.createElement("li");
    if (!c.collected) li.className = "off";
    const what = document.createElement("strong");
    what.textContent = c.what;
    li.append(what, c.detail);
    return li;
  }));
}

let lastEnrolled = null;
async function refresh() {
  try {
    const s = await invoke("status");
    render(s);
    if (s.enrolled !== lastEnrolled) {
      lastEnrolled = s.enrolled;
      await renderNotice();
    }
  } catch (err) {
    showError($("action-error"), err);
  }
}

async function act(button, fn) {
  button.disabled = true;
  clearError($("action-error"));
  try {
    await fn();
  } catch (err) {
    showError($("action-error"), err);
  } finally {
    button.disabled = false;
    await refresh();
  }
}

$("enroll").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const button = form.querySelector("button");
  const error = $("enroll-error");
  clearError(error);
  button.disabled = true;
  button.textContent = "Connecting…";
  try {
    const email = form.email.value.trim();
    render(await invoke("enroll", {
      serverUrl: form.server_url.value,
      companyKey: form.company_key.value,
      email: email === "" ? null : email,
    }));
    lastEnrolled = null;
    await refresh();
  } catch (err) {
    showError(error, err);
  } finally {
    button.disabled = false;
    button.textContent = "Connect";
  }
});

$("pause").addEventListener("click", (ev) =>
  act(ev.target, () => invoke("set_paused", { paused: $("pause").textContent.startsWith("Pause") })));
$("sync").addEventListener("click", (ev) => act(ev.target, () => invoke("sync_now")));
$("dashboard").addEventListener("click", (ev) => act(ev.target, () => invoke("open_dashboard")));
$("task").addEventListener("change", (ev) =>
  act(ev.target, () => invoke("choose_task", { taskId: ev.target.value === "" ? null : ev.target.value })));

refresh();
setInterval(refresh, 1000);
