/* Supervisor view: every call of the token's tenant, updating live.
 *
 * Server contract (see stream/web/server.py):
 *   page    GET /supervisor?token=T[&lang=zh|en]
 *   socket  ws(s)://<host>/v1/live?token=T
 *           first frame  {"type": "calls.snapshot", "calls": [summary, ...]}
 *           then         {"type": "call.summary", "call": summary} on every change
 *           summary = {call_id, tenant, agent_name, customer_name, language, started_at,
 *                      status: live|ended|interrupted, duration, stage,
 *                      warnings: {critical, major, minor},
 *                      last_warning: {utterance_id, rule, severity, quote, ts} | null (newest still in force)}
 *           Close code 1008 = token refused (not a supervisor of this tenant): no retry.
 *   rows open /overlay/{call_id}?token=T&readonly=1 (the supervisor token reads any call
 *   of its tenant).
 *
 * The duration ticks on the local clock from the server's `duration` at receipt, so
 * a supervisor PC with a wrong clock still shows the right figure.  A reconnect gets a
 * fresh snapshot, which replaces the table.  Ended calls are kept for ENDED_KEEP_MS.
 * Labels shared with the overlay and the reconnecting socket are in common.js.
 */
(function () {
  "use strict";

  const { pickLang, withLabels, el, LiveSocket } = window.callassistCommon;
  const ENDED_KEEP_MS = 30 * 60 * 1000;

  const I18N = withLabels({
    zh: {
      brand: "通话助手", title: "实时通话监控", stat_live: "通话进行中", stat_critical: "严重提醒", stat_major: "重要提醒",
      show_ended: "显示已结束通话", col_status: "状态", col_agent: "坐席", col_customer: "客户", col_duration: "时长",
      col_stage: "阶段", col_warnings: "合规提醒", col_last: "最新提醒", open: "查看", empty: "当前没有进行中的通话",
      denied: "无权查看（需要本租户的主管令牌，或令牌已过期）", ago: "前", none: "—",
      status: { live: "通话中", ended: "已结束", interrupted: "中断" },
    },
    en: {
      brand: "Call assist", title: "Live calls", stat_live: "live calls", stat_critical: "critical warnings", stat_major: "major warnings",
      show_ended: "Show ended calls", col_status: "Status", col_agent: "Agent", col_customer: "Customer", col_duration: "Duration",
      col_stage: "Stage", col_warnings: "Warnings", col_last: "Newest warning", open: "View", empty: "No live calls right now",
      denied: "Not allowed (a supervisor token for this tenant is needed, or it expired)", ago: "ago", none: "—",
      status: { live: "Live", ended: "Ended", interrupted: "Interrupted" },
    },
  });

  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const lang = pickLang(params.get("lang"));
  const t = (key) => I18N[lang][key] ?? I18N.en[key] ?? key;
  const label = (group, id) => (I18N[lang][group] || {})[id] || (I18N.en[group] || {})[id] || id || "";

  const $ = (id) => document.getElementById(id);

  // call_id -> {summary, receivedAt (local ms), row, lastWarningKey, endedAt}
  const calls = new Map();
  let showEnded = false;

  function fmtDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function liveDuration(entry) {
    const s = entry.summary;
    const base = Number(s.duration) || 0;
    if (s.status !== "live") return base;
    return base + (Date.now() - entry.receivedAt) / 1000;
  }

  function overlayUrl(callId) {
    const url = new URL(`overlay/${encodeURIComponent(callId)}`, location.href);
    url.search = "";
    url.searchParams.set("token", token);
    url.searchParams.set("readonly", "1");
    url.searchParams.set("lang", lang);
    return url.toString();
  }

  function openCall(callId) {
    window.open(overlayUrl(callId), `call-${callId}`, "noopener");
  }

  // -- rendering ------------------------------------------------------------------------------

  function applyLabels() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.title = `${t("brand")} · ${t("title")}`;
  }

  function setConn(value) {
    const conn = $("conn");
    conn.dataset.state = value;
    conn.textContent = t(`conn_${value}`);
  }

  function showBanner(text) {
    const banner = $("banner");
    banner.textContent = text || "";
    banner.classList.toggle("error", Boolean(text));
    banner.classList.toggle("hidden", !text);
  }

  function buildRow(callId) {
    const row = el("tr");
    row.setAttribute("data-testid", "call-row");
    row.dataset.callId = callId;
    row.tabIndex = 0;
    for (const cls of ["c-status", "c-agent", "c-customer", "c-duration num", "c-stage", "c-warnings", "c-last last-warning", "c-open"]) {
      row.appendChild(el("td", cls));
    }
    const open = el("a", "open-btn", t("open"));
    open.href = overlayUrl(callId);
    open.target = `call-${callId}`;
    open.rel = "noopener";
    open.addEventListener("click", (e) => e.stopPropagation());
    row.querySelector(".c-open").appendChild(open);
    row.addEventListener("click", () => openCall(callId));
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") openCall(callId); });
    return row;
  }

  function fillRow(entry) {
    const s = entry.summary;
    const row = entry.row;
    const w = s.warnings || {};
    row.dataset.status = s.status;
    row.classList.toggle("has-critical", (w.critical || 0) > 0);
    row.classList.toggle("has-major", !(w.critical > 0) && (w.major || 0) > 0);

    const status = row.querySelector(".c-status");
    status.textContent = "";
    status.appendChild(el("span", `status-pill ${s.status}`, label("status", s.status)));

    const agent = row.querySelector(".c-agent");
    agent.textContent = "";
    agent.appendChild(el("div", "name", s.agent_name || t("none")));
    agent.appendChild(el("div", "sub", s.call_id));

    const customer = row.querySelector(".c-customer");
    customer.textContent = "";
    customer.appendChild(el("div", "name", s.customer_name || t("none")));
    if (s.language) customer.appendChild(el("div", "sub", s.language === "zh" ? "中文" : s.language === "en" ? "English" : s.language));

    row.querySelector(".c-duration").textContent = fmtDuration(liveDuration(entry));

    const stage = row.querySelector(".c-stage");
    stage.textContent = "";
    if (s.stage) stage.appendChild(el("span", "stage-pill", label("stages", s.stage)));
    else stage.textContent = t("none");

    const counts = row.querySelector(".c-warnings");
    counts.textContent = "";
    const wrap = el("div", "counts");
    for (const sev of ["critical", "major", "minor"]) {
      const n = Number(w[sev]) || 0;
      const badge = el("span", `count-badge ${sev}${n ? " nz" : ""}`, n);
      badge.title = label("severity", sev);
      badge.dataset.severity = sev;
      wrap.appendChild(badge);
    }
    counts.appendChild(wrap);

    const last = row.querySelector(".c-last");
    last.textContent = "";
    const lw = s.last_warning;
    if (lw) {
      const head = el("div");
      head.appendChild(el("span", `sev ${lw.severity}`, label("severity", lw.severity)));
      head.appendChild(document.createTextNode(` ${label("rules", lw.rule)}`));
      last.appendChild(head);
      if (lw.quote) last.appendChild(el("div", "q", lw.quote));
      const when = el("div", "sub when");
      when.dataset.ts = String(lw.ts);
      last.appendChild(when);
    } else {
      last.textContent = t("none");
    }
    tickRow(entry);
  }

  function tickRow(entry) {
    entry.row.querySelector(".c-duration").textContent = fmtDuration(liveDuration(entry));
    const when = entry.row.querySelector(".c-last .when");
    if (when) {
      // Age measured on the server's clock: the summary's own ts/started_at pair.
      const s = entry.summary;
      const serverNow = (Number(s.started_at) || 0) + liveDuration(entry);
      const age = Math.max(0, serverNow - Number(when.dataset.ts));
      when.textContent = `${fmtDuration(age)} ${t("ago")}`;
    }
  }

  function attention(entry) {
    const s = entry.summary;
    const w = s.warnings || {};
    return [s.status === "live" ? 0 : 1, -(w.critical || 0), -(w.major || 0), -(w.minor || 0), Number(s.started_at) || 0];
  }

  function compare(a, b) {
    const x = attention(a);
    const y = attention(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return a.summary.call_id < b.summary.call_id ? -1 : 1;
  }

  function render() {
    // Calls needing attention first: live before ended, then by critical, major, minor
    // warnings, then longest-running.  Rows are reused so focus and hover survive.
    const body = $("rows");
    const now = Date.now();
    for (const [id, entry] of calls) {
      if (entry.summary.status !== "live" && entry.endedAt && now - entry.endedAt > ENDED_KEEP_MS) {
        entry.row.remove();
        calls.delete(id);
      }
    }
    const visible = [...calls.values()].filter((e) => showEnded || e.summary.status === "live").sort(compare);
    const wanted = new Set(visible.map((e) => e.row));
    for (const row of [...body.children]) if (!wanted.has(row)) row.remove();
    visible.forEach((entry, i) => {
      if (body.children[i] !== entry.row) body.insertBefore(entry.row, body.children[i] || null);
    });
    if (!visible.length) {
      const empty = el("tr", "empty-row");
      const cell = el("td", null, t("empty"));
      cell.colSpan = 8;
      empty.appendChild(cell);
      body.appendChild(empty);
    }
    let live = 0, critical = 0, major = 0;
    for (const entry of calls.values()) {
      if (entry.summary.status !== "live") continue;
      live += 1;
      critical += Number((entry.summary.warnings || {}).critical) || 0;
      major += Number((entry.summary.warnings || {}).major) || 0;
    }
    $("stat-live").textContent = String(live);
    $("stat-critical").textContent = String(critical);
    $("stat-major").textContent = String(major);
  }

  function upsert(summary, flashNew) {
    if (!summary || typeof summary !== "object" || !summary.call_id) return;
    let entry = calls.get(summary.call_id);
    if (!entry) {
      entry = { summary, receivedAt: Date.now(), row: buildRow(summary.call_id), lastWarningKey: null, endedAt: null };
      calls.set(summary.call_id, entry);
    }
    entry.summary = summary;
    entry.receivedAt = Date.now();
    if (summary.status !== "live" && !entry.endedAt) entry.endedAt = Date.now();
    if (summary.status === "live") entry.endedAt = null;
    const lw = summary.last_warning;
    const key = lw ? `${lw.ts}|${lw.rule}|${lw.severity}` : null;
    if (flashNew && key && key !== entry.lastWarningKey) {
      entry.row.classList.remove("fresh");
      void entry.row.offsetWidth; // restart the animation
      entry.row.classList.add("fresh");
    }
    entry.lastWarningKey = key;
    fillRow(entry);
  }

  function onFrame(frame) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "calls.snapshot" && Array.isArray(frame.calls)) {
      const seen = new Set();
      for (const summary of frame.calls) {
        upsert(summary, false);
        if (summary && summary.call_id) seen.add(summary.call_id);
      }
      for (const [id, entry] of calls) {
        if (!seen.has(id)) { entry.row.remove(); calls.delete(id); }
      }
    } else if (frame.type === "call.summary") {
      upsert(frame.call, true);
    }
    render();
  }

  // -- connection -----------------------------------------------------------------------------

  function socketUrl() {
    const url = new URL("v1/live", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.searchParams.set("token", token);
    return url.toString();
  }

  const live = new LiveSocket({
    name: "supervisor",
    url: socketUrl,
    onFrame,
    onOpen: () => { setConn("live"); showBanner(""); },
    onState: setConn,
    onDenied: (reason) => {
      setConn("denied");
      showBanner(reason || t("denied"));
    },
  });

  window.callassistSupervisor = {
    get calls() { return [...calls.values()].map((e) => e.summary); },
    dropConnection() { live.drop(); },
  };

  // -- start ----------------------------------------------------------------------------------

  applyLabels();
  $("show-ended").addEventListener("change", (e) => { showEnded = e.target.checked; render(); });
  render();
  setInterval(() => { for (const entry of calls.values()) tickRow(entry); }, 1000);
  if (!token) {
    setConn("denied");
    showBanner(t("denied"));
  } else {
    live.start();
  }
})();
