/* Shared by the agent overlay and the supervisor page (loaded before either).
 *
 * What both pages must show the same way lives here once: the names of stages,
 * severities and rules in both languages, the connection-state words, the
 * language choice, and the reconnecting socket.  The socket retries with
 * jittered exponential backoff from RECONNECT_MIN_MS to RECONNECT_MAX_MS (a
 * restarted server is not stampeded by every open page at once) and gives up
 * only on close code 1008, the server's "token refused or out of scope".
 */
(function () {
  "use strict";

  const RECONNECT_MIN_MS = 500;
  const RECONNECT_MAX_MS = 10000;
  const DENIED_CLOSE_CODE = 1008;
  const DROPPED_CLOSE_CODE = 4000; // application-defined: the page dropped the socket on purpose

  const LABELS = {
    zh: {
      conn_connecting: "连接中…", conn_live: "实时", conn_reconnecting: "重连中…", conn_denied: "无权访问",
      stages: { opening: "开场核身", empathy: "共情倾听", inquiry: "询问了解", proposal: "方案协商", confirmation: "确认收尾" },
      severity: { critical: "严重", major: "重要", minor: "轻微" },
      rules: {
        threat_violence: "暴力威胁", abusive_language: "辱骂侮辱", false_criminal_threat: "虚假刑事威胁",
        impersonation: "冒充公检法", third_party_disclosure: "向第三方透露", harassment: "骚扰施压",
        misrepresentation: "虚假陈述", overbearing: "态度强势",
      },
    },
    en: {
      conn_connecting: "Connecting…", conn_live: "Live", conn_reconnecting: "Reconnecting…", conn_denied: "Access denied",
      stages: { opening: "Opening", empathy: "Empathy", inquiry: "Inquiry", proposal: "Proposal", confirmation: "Confirmation" },
      severity: { critical: "Critical", major: "Major", minor: "Minor" },
      rules: {
        threat_violence: "Threat of violence", abusive_language: "Abusive language", false_criminal_threat: "False criminal threat",
        impersonation: "Impersonation", third_party_disclosure: "Third-party disclosure", harassment: "Harassment",
        misrepresentation: "Misrepresentation", overbearing: "Overbearing",
      },
    },
  };

  /** "zh" or "en": the page's ?lang= if valid, else the browser's language. */
  function pickLang(value) {
    if (value === "zh" || value === "en") return value;
    return (navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en";
  }

  /** The shared labels with a page's own words on top, per language. */
  function withLabels(pageI18n) {
    const out = {};
    for (const lang of Object.keys(LABELS)) out[lang] = { ...LABELS[lang], ...(pageI18n[lang] || {}) };
    return out;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** One JSON-frame websocket that keeps itself connected.
   *
   * opts: url() -> string (asked at every attempt, so it can carry since=N),
   * onFrame(obj), onOpen(), onState("connecting" | "reconnecting"), onDenied(reason), name.
   */
  class LiveSocket {
    constructor(opts) {
      this.opts = opts;
      this.socket = null;
      this.attempt = 0;
      this.timer = null;
      this.stopped = false;
      this.opened = false;
    }

    start() {
      clearTimeout(this.timer);
      if (this.stopped) return;
      this.opts.onState(this.opened || this.attempt > 0 ? "reconnecting" : "connecting");
      let ws;
      try {
        ws = new WebSocket(this.opts.url());
      } catch (_) {
        this.retry();
        return;
      }
      this.socket = ws;
      ws.onopen = () => {
        this.attempt = 0;
        this.opened = true;
        if (!this.stopped) this.opts.onOpen();
      };
      ws.onmessage = (msg) => {
        if (typeof msg.data !== "string") return;
        let frame;
        try { frame = JSON.parse(msg.data); } catch (_) { return; }
        try { this.opts.onFrame(frame); } catch (err) { console.error(`${this.opts.name}: could not apply frame`, frame, err); }
      };
      ws.onclose = (close) => {
        if (this.socket !== ws) return; // abandoned by drop()
        this.socket = null;
        if (close.code === DENIED_CLOSE_CODE) {
          this.stopped = true;
          this.opts.onDenied(close.reason);
          return;
        }
        if (!this.stopped) this.retry();
      };
      ws.onerror = () => { /* onclose follows and decides */ };
    }

    /** No more reconnects (the call ended); the open socket is left to the server to close. */
    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
    }

    retry() {
      this.opts.onState("reconnecting");
      const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.attempt);
      this.attempt += 1;
      this.timer = setTimeout(() => this.start(), base * (0.8 + 0.4 * Math.random()));
    }

    /** Drop the socket as a network failure would (abandoned at once, not after its closing
     *  handshake); the page reconnects and catches up.  For tests and debugging. */
    drop() {
      const old = this.socket;
      if (!old) return;
      this.socket = null;
      try { old.close(DROPPED_CLOSE_CODE, "dropped"); } catch (_) { /* already closing */ }
      this.retry();
    }
  }

  window.callassistCommon = { pickLang, withLabels, el, LiveSocket };
})();
