// The options page: the agent's port, pairing, and the last outcome. Logic stays in background.js.
const api = globalThis.browser ?? globalThis.chrome;
const $ = (id) => document.getElementById(id);

async function show() {
  const s = await api.storage.local.get(["port", "token", "lastError", "lastReportAt"]);
  if (!s.port) s.port = (await (await fetch(api.runtime.getURL("agent.json"))).json()).port;
  $("port").value = s.port;
  const parts = [s.token ? "Paired with the agent." : "Not paired."];
  if (s.lastReportAt) parts.push(`Last report: ${new Date(s.lastReportAt).toLocaleString()}.`);
  if (s.lastError) parts.push(`Last problem: ${s.lastError}.`);
  $("status").textContent = parts.join(" ");
}

$("port").addEventListener("change", async () => {
  const port = Number($("port").value);
  if (port > 0 && port < 65536) await api.storage.local.set({ port });
  await show();
});
$("pair").addEventListener("click", async () => {
  await api.storage.local.remove("token");
  await api.runtime.sendMessage("report-now");
  await show();
});
$("forget").addEventListener("click", async () => {
  await api.storage.local.remove("token");
  await show();
});
show();
