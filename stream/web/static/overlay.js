/* Agent overlay: one call's live transcript and guidance.
 *
 * Server contract (see stream/web/server.py):
 *   page    GET /overlay/{call_id}?token=T[&lang=zh|en][&readonly=1]
 *   socket  ws(s)://<host>/v1/calls/{call_id}/events?token=T&since=N
 *           replays every event with seq > N from the call's log, then streams live
 *           events; one JSON text frame per event, in the wire form of
 *           assist/events.py ({type, call_id, seq, ts, ...body fields}).
 *           Close code 1008 = token refused or out of scope: we stop retrying.
 *
 * Robustness rules: any frame may arrive twice (replay after reconnect), so events
 * are applied once per seq; any partial may be missing (they are dropped first
 * under load), so finals and final warnings must stand on their own.  All text
 * from the call goes through textContent, never innerHTML.
 *
 * Limits: MAX_LINES transcript lines and MAX_WARNINGS warning cards are kept in
 * the page (oldest removed).  Labels shared with the supervisor page and the
 * reconnecting socket are in common.js.
 */
(function () {
  "use strict";

  const MAX_LINES = 2000;
  const MAX_WARNINGS = 100;
  const MAX_CHIPS = 12;
  const { pickLang, withLabels, el, LiveSocket } = window.callassistCommon;
  const STAGES = ["opening", "empathy", "inquiry", "proposal", "confirmation"];

  const I18N = withLabels({
    zh: {
      brand: "通话助手", readonly: "只读", warnings: "合规提醒", no_warnings: "暂无合规提醒",
      suggestions: "推荐话术", click_to_copy: "点击复制", no_suggestions: "通话进行中将给出推荐话术",
      signals: "客户信号", no_signals: "暂无", transcript: "实时转写", jump: "有新内容 ↓",
      agent: "坐席", customer: "客户", copied: "已复制", copy: "复制", rephrase: "建议改说",
      provisional: "预警", conn_ended: "通话已结束", ended: "通话已结束", denied: "无权查看此通话（令牌无效或已过期）",
      error: "错误", count_suffix: "条",
      signal_names: {
        confirm_identity: "已核实身份", hardship: "经济困难", request_plan: "请求还款方案", promise_to_pay: "承诺还款",
        dispute: "对债务有异议", cease_contact: "要求停止联系", third_party: "非本人接听", lawyer: "已委托律师", hostile: "情绪激动",
      },
    },
    en: {
      brand: "Call assist", readonly: "Read-only", warnings: "Compliance", no_warnings: "No warnings",
      suggestions: "Suggested next lines", click_to_copy: "click to copy", no_suggestions: "Suggestions appear as the call goes on",
      signals: "Customer signals", no_signals: "None yet", transcript: "Transcript", jump: "New lines ↓",
      agent: "Agent", customer: "Customer", copied: "Copied", copy: "Copy", rephrase: "Say instead",
      provisional: "provisional", conn_ended: "Call ended", ended: "The call has ended", denied: "Not allowed to view this call (token invalid or expired)",
      error: "Error", count_suffix: "",
      signal_names: {
        confirm_identity: "Identity confirmed", hardship: "Hardship", request_plan: "Asks for a plan", promise_to_pay: "Promise to pay",
        dispute: "Disputes the debt", cease_contact: "Asks to stop calls", third_party: "Third party answered", lawyer: "Has a lawyer", hostile: "Hostile",
      },
    },
  });
  const SIGNAL_TONE = {
    confirm_identity: "good", promise_to_pay: "good",
    dispute: "alert", cease_contact: "alert", third_party: "alert", lawyer: "alert", hostile: "alert",
  };
  const SEVERITY_RANK = { critical: 0, major: 1, minor: 2 };

  // -- page parameters --------------------------------------------------------------------

  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const readonly = params.get("readonly") === "1";
  const pathParts = location.pathname.replace(/\/+$/, "").split("/");
  const callId = decodeURIComponent(pathParts[pathParts.length - 1] || "");
  let lang = pickLang(params.get("lang"));

  function t(key) { return I18N[lang][key] ?? I18N.en[key] ?? key; }
  function label(group, id) { return (I18N[lang][group] || {})[id] || (I18N.en[group] || {})[id] || id; }

  // -- state ------------------------------------------------------------------------------

  const state = {
    lastSeq: 0,
    conn: "connecting",
    ended: false,
    stage: null,
    startedTs: null,      // call.started ts (server clock)
    skew: Infinity,       // estimate of local clock minus server clock: min over events of receipt - ts
    duration: null,       // final duration once ended
    lines: new Map(),     // utterance_id -> line element
    warnings: new Map(),  // utterance_id|rule -> warning element
    flagged: new Set(),   // utterance ids with a warning, underlined in the transcript
    chips: new Map(),     // utterance_id|signal -> chip element
    suggestion: null,     // newest suggestion event
    meta: {},
  };

  const $ = (id) => document.getElementById(id);

  // -- rendering: static labels -------------------------------------------------------------

  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.title = `${t("brand")} · ${state.meta.customer_name || callId}`;
    renderStages();
    renderConn();
    renderWho();
    // Re-label dynamic content that carries ids rather than text from the call.
    state.lines.forEach((line) => { line.querySelector(".who").textContent = t(line.dataset.speaker); });
    state.warnings.forEach((card) => relabelWarning(card));
    state.chips.forEach((chip) => { chip.textContent = label("signal_names", chip.dataset.signal); });
    if (state.suggestion) renderSuggestion(state.suggestion);
    renderWarningCount();
  }

  function renderWho() {
    const who = $("who");
    who.textContent = "";
    const m = state.meta;
    const customer = m.customer_name || m.customer || "";
    const agent = m.agent_name || m.agent || "";
    if (customer) who.appendChild(el("strong", null, customer));
    if (agent) who.appendChild(document.createTextNode(`${customer ? " · " : ""}${t("agent")} ${agent}`));
    if (!customer && !agent) who.appendChild(el("span", null, callId));
    who.title = callId;
  }

  function renderStages() {
    const strip = $("stages");
    strip.textContent = "";
    const current = STAGES.indexOf(state.stage);
    STAGES.forEach((id, i) => {
      const item = el("li", null, label("stages", id));
      item.dataset.stage = id;
      item.dataset.state = i < current ? "done" : i === current ? "current" : "todo";
      if (i === current) item.setAttribute("aria-current", "step");
      strip.appendChild(item);
    });
    strip.dataset.stage = state.stage || "";
  }

  function renderConn() {
    const conn = $("conn");
    conn.dataset.state = state.conn;
    conn.textContent = t(`conn_${state.conn}`);
  }

  function setConn(value) {
    state.conn = value;
    renderConn();
  }

  function showBanner(text, isError) {
    const banner = $("banner");
    banner.textContent = text;
    banner.classList.toggle("error", Boolean(isError));
    banner.classList.toggle("hidden", !text);
  }

  function fmtClock(seconds) {
    const s = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function tickClock() {
    let seconds = 0;
    // Live events arrive within milliseconds of their ts, so the smallest receipt-minus-ts
    // seen is the clock offset; the timer then runs on server time even if this PC's
    // clock is off.  Replayed events only make the estimate temporarily pessimistic.
    if (state.duration !== null) seconds = state.duration;
    else if (state.startedTs !== null && Number.isFinite(state.skew)) seconds = Date.now() / 1000 - state.skew - state.startedTs;
    $("clock").textContent = fmtClock(seconds);
  }

  // -- rendering: transcript ----------------------------------------------------------------

  const linesBox = () => $("lines");
  let stickToBottom = true;

  function upsertLine(ev, final) {
    let line = state.lines.get(ev.utterance_id);
    if (line && line.dataset.final === "true" && !final) return; // a late partial never undoes a final
    if (!line) {
      line = el("div", "line");
      line.setAttribute("data-testid", "transcript-line");
      line.dataset.utterance = ev.utterance_id;
      const meta = el("div", "meta");
      meta.appendChild(el("span", "who"));
      meta.appendChild(el("span", "at"));
      line.appendChild(meta);
      line.appendChild(el("div", "text"));
      insertByStart(line, Number(ev.start) || 0);
      state.lines.set(ev.utterance_id, line);
      trimLines();
    }
    line.dataset.speaker = ev.speaker;
    line.dataset.final = final ? "true" : "false";
    line.dataset.start = String(Number(ev.start) || 0);
    line.querySelector(".who").textContent = t(ev.speaker);
    line.querySelector(".at").textContent = fmtClock(ev.start);
    line.querySelector(".text").textContent = ev.text;
    if (state.flagged.has(ev.utterance_id)) line.classList.add("flagged");
    followTail();
  }

  function insertByStart(line, start) {
    // Both speakers can talk at once and a partial can be overtaken by the other leg's
    // final, so lines are placed by their start time, not by arrival.
    line.dataset.start = String(start);
    const box = linesBox();
    let before = null;
    for (let node = box.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.start) <= start) break;
      before = node;
    }
    box.insertBefore(line, before);
  }

  function trimLines() {
    const box = linesBox();
    while (box.childElementCount > MAX_LINES) {
      const first = box.firstElementChild;
      state.lines.delete(first.dataset.utterance);
      first.remove();
    }
  }

  function followTail() {
    const box = linesBox();
    if (stickToBottom) box.scrollTop = box.scrollHeight;
    else $("jump").classList.remove("hidden");
  }

  // -- rendering: guidance ------------------------------------------------------------------

  function applyWarning(ev) {
    const key = `${ev.utterance_id}|${ev.rule}`;
    const partial = Boolean(ev.partial);
    let card = state.warnings.get(key);
    if (card) {
      // Shown once per utterance+rule; a final replaces a provisional, nothing else does.
      if (card.dataset.partial === "true" && !partial) fillWarning(card, ev);
      return;
    }
    card = el("article", "warning fresh");
    card.setAttribute("data-testid", "warning");
    state.warnings.set(key, card);
    fillWarning(card, ev);
    placeWarning(card);
    trimWarnings();
    const empty = $("warnings").querySelector(".empty");
    if (empty) empty.remove();
    state.flagged.add(ev.utterance_id);
    const line = state.lines.get(ev.utterance_id);
    if (line) line.classList.add("flagged");
    renderWarningCount();
    setTimeout(() => card.classList.remove("fresh"), 1500);
  }

  // A warning raised from a partial that the final transcript does not bear out is withdrawn
  // (compliance.retracted): the card goes, and the line is unflagged if nothing else flags it.
  function retractWarning(ev) {
    const key = `${ev.utterance_id}|${ev.rule}`;
    const card = state.warnings.get(key);
    if (!card) return;
    state.warnings.delete(key);
    card.remove();
    const still = [...state.warnings.values()].some((c) => c.dataset.utterance === ev.utterance_id);
    if (!still) {
      state.flagged.delete(ev.utterance_id);
      const line = state.lines.get(ev.utterance_id);
      if (line) line.classList.remove("flagged");
    }
    const box = $("warnings");
    if (!box.querySelector(".warning") && !box.querySelector(".empty")) {
      const empty = el("div", "empty", t("no_warnings"));
      empty.setAttribute("data-i18n", "no_warnings");
      box.appendChild(empty);
    }
    renderWarningCount();
  }

  // A warning raised from a partial is not raised again by the final (the engine sends each
  // utterance+rule once); once the utterance's final text is in, the words it quoted were said.
  function settleWarnings(utteranceId) {
    for (const card of state.warnings.values()) {
      if (card.dataset.utterance !== utteranceId || card.dataset.partial !== "true") continue;
      card.dataset.partial = "false";
      const prov = card.querySelector(".provisional");
      if (prov) prov.remove();
    }
  }

  function fillWarning(card, ev) {
    card.textContent = "";
    card.dataset.rule = ev.rule;
    card.dataset.severity = ev.severity;
    card.dataset.partial = ev.partial ? "true" : "false";
    card.dataset.utterance = ev.utterance_id;
    card.dataset.seq = String(ev.seq);
    const head = el("div", "head");
    head.appendChild(el("span", `sev ${ev.severity}`, label("severity", ev.severity)));
    head.appendChild(el("span", "rule", label("rules", ev.rule)));
    if (ev.partial) head.appendChild(el("span", "provisional", t("provisional")));
    const line = state.lines.get(ev.utterance_id);
    const at = line ? line.querySelector(".at").textContent : "";
    head.appendChild(el("span", "when", at));
    card.appendChild(head);
    if (ev.quote) card.appendChild(el("div", "quote", ev.quote));
    if (ev.why) card.appendChild(el("div", "why", ev.why));
    if (ev.rephrase) {
      const box = el("div", "rephrase");
      box.appendChild(el("span", "label", t("rephrase")));
      box.appendChild(el("span", "text", ev.rephrase));
      if (!readonly) {
        const btn = el("button", "copy-btn", t("copy"));
        btn.type = "button";
        btn.addEventListener("click", () => copyText(ev.rephrase, () => flashButton(btn)));
        box.appendChild(btn);
      }
      card.appendChild(box);
    }
  }

  function relabelWarning(card) {
    if (!card.dataset || !card.dataset.rule) return;
    const sev = card.querySelector(".sev");
    if (sev) sev.textContent = label("severity", card.dataset.severity);
    const rule = card.querySelector(".rule");
    if (rule) rule.textContent = label("rules", card.dataset.rule);
    const prov = card.querySelector(".provisional");
    if (prov) prov.textContent = t("provisional");
    const lab = card.querySelector(".rephrase .label");
    if (lab) lab.textContent = t("rephrase");
    const btn = card.querySelector(".copy-btn");
    if (btn) btn.textContent = t("copy");
  }

  function placeWarning(card) {
    // Newest first within a severity, more severe above less severe, so a critical
    // warning is never pushed out of sight by a string of minor ones.
    const box = $("warnings");
    const rank = SEVERITY_RANK[card.dataset.severity] ?? 3;
    let before = null;
    for (const node of box.querySelectorAll(".warning")) {
      if ((SEVERITY_RANK[node.dataset.severity] ?? 3) >= rank) { before = node; break; }
    }
    box.insertBefore(card, before);
    box.scrollTop = 0;
  }

  function trimWarnings() {
    const cards = $("warnings").querySelectorAll(".warning");
    for (let i = MAX_WARNINGS; i < cards.length; i++) {
      const card = cards[i];
      state.warnings.delete(`${card.dataset.utterance}|${card.dataset.rule}`);
      card.remove();
    }
  }

  function renderWarningCount() {
    const counts = { critical: 0, major: 0, minor: 0 };
    $("warnings").querySelectorAll(".warning").forEach((c) => { counts[c.dataset.severity] = (counts[c.dataset.severity] || 0) + 1; });
    const parts = ["critical", "major", "minor"].filter((s) => counts[s]).map((s) => `${label("severity", s)} ${counts[s]}`);
    $("warning-count").textContent = parts.join(" · ");
  }

  function renderSuggestion(ev) {
    const list = $("suggestions");
    list.textContent = "";
    const items = Array.isArray(ev.items) ? ev.items : [];
    items.forEach((item) => {
      const li = el("li");
      const card = el(readonly ? "div" : "button", "suggestion");
      card.setAttribute("data-testid", "suggestion");
      if (!readonly) {
        card.type = "button";
        card.title = t("click_to_copy");
        card.addEventListener("click", () => copyText(item.text, () => {
          card.classList.add("did-copy");
          setTimeout(() => card.classList.remove("did-copy"), 1200);
        }));
      }
      card.appendChild(el("div", "text", item.text));
      if (item.reason) card.appendChild(el("div", "reason", item.reason));
      card.appendChild(el("span", "copied", `✓ ${t("copied")}`));
      li.appendChild(card);
      list.appendChild(li);
    });
    $("no-suggestions").classList.toggle("hidden", items.length > 0);
    $("suggestion-hint").classList.toggle("hidden", readonly || items.length === 0);
  }

  function applySignal(ev) {
    const key = `${ev.utterance_id}|${ev.signal}`;
    if (state.chips.has(key)) return;
    const box = $("signals");
    const empty = box.querySelector(".empty");
    if (empty) empty.remove();
    // One chip per signal kind: a repeated signal moves to the front instead of piling up.
    box.querySelectorAll(".chip").forEach((chip) => {
      if (chip.dataset.signal === ev.signal) {
        state.chips.delete(chip.dataset.key);
        chip.remove();
      }
    });
    const chip = el("span", "chip fresh", label("signal_names", ev.signal));
    chip.setAttribute("data-testid", "signal-chip");
    chip.dataset.signal = ev.signal;
    chip.dataset.key = key;
    chip.dataset.tone = SIGNAL_TONE[ev.signal] || "info";
    if (ev.quote) chip.title = ev.quote;
    box.insertBefore(chip, box.firstChild);
    state.chips.set(key, chip);
    while (box.childElementCount > MAX_CHIPS) {
      const last = box.lastElementChild;
      state.chips.delete(last.dataset.key);
      last.remove();
    }
    setTimeout(() => chip.classList.remove("fresh"), 1000);
  }

  // -- clipboard ------------------------------------------------------------------------------

  function copyText(text, done) {
    // navigator.clipboard needs a secure context (https or localhost); an agent on a
    // plain-http LAN address still gets a working copy through the legacy path.
    const legacy = () => {
      const area = el("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); } catch (_) { /* nothing else to try */ }
      area.remove();
      done();
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, legacy);
    } else {
      legacy();
    }
  }

  function flashButton(btn) {
    btn.textContent = `✓ ${t("copied")}`;
    setTimeout(() => { btn.textContent = t("copy"); }, 1200);
  }

  // -- events -------------------------------------------------------------------------------

  function applyEvent(ev) {
    if (!ev || typeof ev !== "object" || typeof ev.seq !== "number") return;
    if (ev.seq <= state.lastSeq) return; // replayed after a reconnect: already applied
    state.lastSeq = ev.seq;
    document.body.dataset.lastSeq = String(ev.seq);
    if (typeof ev.ts === "number") state.skew = Math.min(state.skew, Date.now() / 1000 - ev.ts);
    switch (ev.type) {
      case "call.started": {
        state.meta = (ev.metadata && typeof ev.metadata === "object") ? ev.metadata : {};
        state.startedTs = ev.ts;
        if (ev.language === "zh" || ev.language === "en") lang = ev.language;
        applyLang();
        break;
      }
      case "transcript.partial": upsertLine(ev, false); break;
      case "transcript.final": upsertLine(ev, true); settleWarnings(ev.utterance_id); break;
      case "stage.changed":
        state.stage = ev.stage;
        renderStages();
        break;
      case "suggestion":
        state.suggestion = ev;
        renderSuggestion(ev);
        break;
      case "compliance.warning": applyWarning(ev); break;
      case "compliance.retracted": retractWarning(ev); break;
      case "customer.signal": applySignal(ev); break;
      case "call.ended":
        state.ended = true;
        live.stop();
        state.duration = Number(ev.duration) || 0;
        setConn("ended");
        showBanner(t("ended"), false);
        tickClock();
        break;
      case "error":
        if (ev.fatal) showBanner(`${t("error")}: ${ev.message || ev.code}`, true);
        break;
      default: break; // newer event types are ignored, not fatal
    }
  }

  // -- connection -----------------------------------------------------------------------------

  function socketUrl() {
    const url = new URL(`../v1/calls/${encodeURIComponent(callId)}/events`, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.searchParams.set("token", token);
    url.searchParams.set("since", String(state.lastSeq));
    return url.toString();
  }

  const live = new LiveSocket({
    name: "overlay",
    url: socketUrl,
    onFrame: applyEvent,
    onOpen: () => { if (!state.ended) setConn("live"); },
    onState: setConn,
    onDenied: (reason) => {
      setConn("denied");
      showBanner(reason || t("denied"), true);
    },
  });

  // Hooks for tests and for debugging from the console.
  window.callassist = {
    get lastSeq() { return state.lastSeq; },
    get connection() { return state.conn; },
    /** Drop the socket as a network failure would; the page reconnects and catches up. */
    dropConnection() { live.drop(); },
  };

  // -- start ----------------------------------------------------------------------------------

  document.body.classList.toggle("readonly", readonly);
  $("readonly-badge").classList.toggle("hidden", !readonly);
  $("lines").addEventListener("scroll", () => {
    const box = $("lines");
    stickToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    if (stickToBottom) $("jump").classList.add("hidden");
  });
  $("jump").addEventListener("click", () => {
    stickToBottom = true;
    $("jump").classList.add("hidden");
    followTail();
  });
  applyLang();
  renderSuggestion({ items: [] });
  setInterval(tickClock, 1000);
  if (!token) {
    setConn("denied");
    showBanner(t("denied"), true);
  } else {
    live.start();
  }
})();
