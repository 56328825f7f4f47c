/* Renkei tablet app: API calls with CSRF and retry, field errors, live updates over the websocket,
   notifications, idle lock, list filter. No patient data is ever written to browser storage: only the
   last event sequence number (an integer) is kept in sessionStorage so a new page can catch up. */
(function () {
  "use strict";

  var body = document.body;
  var R = (window.Renkei = window.Renkei || {});
  var strings = {};
  try { strings = JSON.parse((document.getElementById("i18n") || {}).textContent || "{}"); } catch (e) { strings = {}; }
  R.lang = body.dataset.lang || "ja";
  R.csrf = body.dataset.csrf || "";
  R.userId = body.dataset.userId || "";

  R.t = function (key, vars) {
    var text = strings[key] || key;
    Object.keys(vars || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(vars[k])); });
    return text;
  };

  R.newKey = function () {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  };

  function NetworkError(message) { this.name = "NetworkError"; this.message = message; }
  NetworkError.prototype = Object.create(Error.prototype);
  R.NetworkError = NetworkError;

  /* One API call with the session cookie and the CSRF header. Resolves with {ok, status, body, headers};
     rejects with NetworkError when the request never got an answer from the application. */
  R.api = function (method, url, options) {
    options = options || {};
    var headers = Object.assign({ "X-CSRF-Token": R.csrf, "Accept": "application/json" }, options.headers || {});
    var init = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    } else if (options.form) {
      init.body = options.form;
    }
    return fetch(url, init).then(function (res) {
      // A proxy's gateway error means the application never answered: as good as no network.
      if (res.status === 502 || res.status === 503 || res.status === 504) { throw new NetworkError("gateway " + res.status); }
      return res.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = null; }
        return { ok: res.ok, status: res.status, body: parsed || {}, headers: res.headers };
      });
    }, function (err) { throw new NetworkError(String(err && err.message || err)); });
  };

  /* Send until the application answers. `make` builds the same request each time (same body, same
     Idempotency-Key), so a request that did arrive is replayed, never doubled. */
  R.sendWithRetry = function (make, hooks) {
    hooks = hooks || {};
    var attempt = 0;
    return new Promise(function (resolve, reject) {
      function tryOnce() {
        if (hooks.cancelled && hooks.cancelled()) { reject(new NetworkError("cancelled")); return; }
        make().then(function (res) {
          if (attempt > 0 && hooks.onBack) { hooks.onBack(); }
          resolve(res);
        }, function (err) {
          if (!(err instanceof NetworkError)) { reject(err); return; }
          attempt += 1;
          if (hooks.onWait) { hooks.onWait(attempt); }
          var delay = Math.min(30000, 1000 * Math.pow(2, Math.min(attempt - 1, 5)));
          var timer = null;
          function again() {
            window.removeEventListener("online", again);
            R.retryNow = null;
            clearTimeout(timer);
            tryOnce();
          }
          timer = setTimeout(again, delay);
          window.addEventListener("online", again);
          R.retryNow = again;
        });
      }
      tryOnce();
    });
  };

  /* -- field errors next to the fields ---------------------------------------------------- */

  function message(problem) { return R.lang === "ja" ? problem.message_ja : (problem.message_en || problem.message_ja); }

  R.clearErrors = function (root) {
    root.querySelectorAll("[data-generated-error]").forEach(function (el) { el.remove(); });
    root.querySelectorAll("[aria-invalid]").forEach(function (el) {
      el.removeAttribute("aria-invalid");
      var described = (el.getAttribute("aria-describedby") || "").split(" ").filter(function (id) { return id && !/-err$/.test(id); });
      if (described.length) { el.setAttribute("aria-describedby", described.join(" ")); } else { el.removeAttribute("aria-describedby"); }
    });
    root.querySelectorAll(".invalid").forEach(function (el) { el.classList.remove("invalid"); });
  };

  var errorCount = 0;
  /* Show each problem next to the element `locate(path)` returns (or only in the summary). */
  R.showErrors = function (root, problems, locate, summary) {
    R.clearErrors(root);
    var list = summary ? summary.querySelector("ul") : null;
    if (list) { list.innerHTML = ""; }
    var firstTarget = null;
    problems.forEach(function (problem) {
      var target = locate(problem.path || "");
      var id = "gen-" + (++errorCount) + "-err";
      if (target) {
        var p = document.createElement("p");
        p.className = "field-error";
        p.id = id;
        p.setAttribute("data-generated-error", "");
        p.textContent = message(problem);
        var legend = target.tagName === "FIELDSET" ? target.querySelector(":scope > legend") : null;
        if (legend) { legend.insertAdjacentElement("afterend", p); target.classList.add("invalid"); }
        else { target.appendChild(p); }
        var inputs = target.hasAttribute("data-error-slot") ? [target.previousElementSibling] :
          target.matches("input, select, textarea") ? [target] :
          Array.prototype.slice.call(target.querySelectorAll(":scope > input, :scope > select, :scope > textarea, :scope > .choices input, :scope > label > input"));
        inputs.forEach(function (input) {
          input.setAttribute("aria-invalid", "true");
          input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + id).trim());
        });
        firstTarget = firstTarget || inputs[0] || target;
      }
      if (list) {
        var li = document.createElement("li");
        li.setAttribute("data-generated-error", "");
        if (target) {
          var a = document.createElement("a");
          a.href = "#" + id;
          var label = target.querySelector("label, legend, .label");
          var name = "";
          if (label) {
            var copy = label.cloneNode(true);
            copy.querySelectorAll(".badge, .muted, input").forEach(function (el) { el.remove(); });
            name = copy.textContent.trim().replace(/\s+/g, " ");
          }
          a.textContent = (name ? name + ": " : "") + message(problem);
          li.appendChild(a);
        } else {
          li.textContent = message(problem);
        }
        list.appendChild(li);
      }
    });
    if (summary) {
      summary.hidden = problems.length === 0;
      if (problems.length) { summary.focus(); }
    } else if (firstTarget && firstTarget.focus) { firstTarget.focus(); }
    return problems.length;
  };

  /* -- toasts ------------------------------------------------------------------------------- */

  R.toast = function (text, options) {
    options = options || {};
    var box = document.getElementById("toasts");
    if (!box) { return; }
    var toast = document.createElement("div");
    toast.className = "toast" + (options.urgent ? " urgent" : "");
    toast.setAttribute("role", options.urgent ? "alert" : "status");
    var span = document.createElement("span");
    span.className = "grow";
    if (options.href) {
      var a = document.createElement("a");
      a.href = options.href;
      a.textContent = text;
      span.appendChild(a);
    } else {
      span.textContent = text;
    }
    var close = document.createElement("button");
    close.type = "button";
    close.textContent = R.t("close");
    close.addEventListener("click", function () { toast.remove(); });
    toast.appendChild(span);
    toast.appendChild(close);
    box.appendChild(toast);
    if (options.urgent && navigator.vibrate) { try { navigator.vibrate([200, 100, 200]); } catch (e) { /* not allowed */ } }
    // Urgent news stays until it is dismissed; the rest fades after a while.
    if (!options.urgent) { setTimeout(function () { toast.remove(); }, 10000); }
    return toast;
  };

  /* -- live regions: re-render parts of this page from the server ---------------------------- */

  R.refresh = function () {
    var regions = document.querySelectorAll("[data-live]");
    if (!regions.length) { return Promise.resolve([]); }
    var before = {};
    document.querySelectorAll("[data-entry-id]").forEach(function (el) { before[el.dataset.entryId] = true; });
    return fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (res) {
        if (res.redirected || !res.ok) { return null; }
        return res.text();
      })
      .then(function (html) {
        if (!html) { return []; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var fresh = doc.querySelector('[data-live="' + region.dataset.live + '"]');
          if (fresh) { region.innerHTML = fresh.innerHTML; }
        });
        var added = [];
        document.querySelectorAll("[data-live] [data-entry-id]").forEach(function (el) {
          if (!before[el.dataset.entryId]) { el.classList.add("fresh"); added.push(el); }
        });
        return added;
      }, function () { return []; });
  };

  /* -- notifications: badge and panel --------------------------------------------------------- */

  var bell = document.getElementById("notif-button");
  var panel = document.getElementById("notif-panel");

  function notificationLink(n) {
    var refs = n.refs || {};
    if (refs.entry_id) { return "/entries/" + refs.entry_id; }
    if (n.kind === "break_glass") { return "/admin/break-glass"; }
    if (n.patient_id) { return "/patients/" + n.patient_id + "/timeline"; }
    return "/patients";
  }

  function notificationText(n) {
    var key = "notif_" + String(n.kind || "").replace(/[^a-z0-9]+/gi, "_");
    var text = strings[key] ? R.t(key) : R.t("notif_generic");
    return (n.urgent ? R.t("urgent_prefix") : "") + text;
  }

  R.updateBadge = function () {
    if (!bell) { return Promise.resolve(); }
    return R.api("GET", "/api/v1/notifications?unread=true&limit=500").then(function (res) {
      if (!res.ok || !Array.isArray(res.body)) { return; }
      var count = res.body.length;
      var badge = document.getElementById("notif-count");
      badge.textContent = String(count);
      badge.hidden = count === 0;
      bell.classList.toggle("has-urgent", res.body.some(function (n) { return n.urgent; }));
      bell.setAttribute("aria-label", R.t("notifications_n", { n: count }));
    }, function () { /* offline: the badge catches up with the next event */ });
  };

  function loadPanel() {
    var list = document.getElementById("notif-list");
    R.api("GET", "/api/v1/notifications?limit=50").then(function (res) {
      list.innerHTML = "";
      if (!res.ok || !res.body.length) {
        var empty = document.createElement("li");
        empty.textContent = R.t("notifications_empty");
        list.appendChild(empty);
        return;
      }
      res.body.forEach(function (n) {
        var li = document.createElement("li");
        if (!n.read_at) { li.className = "unread"; }
        var a = document.createElement("a");
        a.className = "link";
        a.href = notificationLink(n);
        a.textContent = notificationText(n) + " · " + new Date(n.created_at).toLocaleString(R.lang === "ja" ? "ja-JP" : "en-GB");
        a.addEventListener("click", function (ev) {
          if (n.read_at) { return; }
          ev.preventDefault();
          R.api("POST", "/api/v1/notifications/" + n.id + "/read").then(function () { location.assign(a.href); },
            function () { location.assign(a.href); });
        });
        li.appendChild(a);
        list.appendChild(li);
      });
    }, function () { list.textContent = R.t("offline"); });
  }

  if (bell && panel) {
    bell.addEventListener("click", function () {
      var open = panel.hidden;
      panel.hidden = !open;
      bell.setAttribute("aria-expanded", String(open));
      if (open) { loadPanel(); }
    });
    panel.querySelector("[data-close-panel]").addEventListener("click", function () {
      panel.hidden = true;
      bell.setAttribute("aria-expanded", "false");
      bell.focus();
    });
  }

  /* -- live events over the websocket ------------------------------------------------------- */

  var SEQ_KEY = "renkei.seq";
  var live = { seq: null, socket: null, attempts: 0, timer: null, stopped: false, pending: [], flush: null };
  try {
    var stored = sessionStorage.getItem(SEQ_KEY);
    live.seq = stored && /^\d+$/.test(stored) ? Number(stored) : null;
  } catch (e) { live.seq = null; }

  function liveStatus(show) {
    var el = document.getElementById("live-status");
    if (el) { el.hidden = !show; }
  }

  function scheduleReconnect() {
    if (live.stopped || live.timer) { return; }
    live.attempts += 1;
    if (live.attempts > 1) { liveStatus(true); }
    var delay = Math.min(30000, 500 * Math.pow(2, Math.min(live.attempts, 6)));
    live.timer = setTimeout(function () { live.timer = null; connect(); }, delay);
  }

  function eventEntryId(ev) { return ev.entry_id || (ev.refs && ev.refs.entry_id) || null; }

  function describe(ev, added) {
    var entryId = eventEntryId(ev);
    var row = entryId ? document.querySelector('[data-live] [data-entry-id="' + entryId + '"]') : null;
    var urgent = ev.urgent === true || ev.priority === "urgent" || !!(row && row.classList.contains("is-urgent"));
    var title = row && row.querySelector(".title") ? row.querySelector(".title").textContent.trim() : "";
    var patientRow = ev.patient_id ? document.querySelector('[data-patient-id="' + ev.patient_id + '"] [data-patient-name]') : null;
    var who = patientRow ? patientRow.textContent.trim() + ": " : "";
    var type = String(ev.type || "");
    var key = "event_" + type.replace(/[^a-z0-9]+/gi, "_");
    var what = strings[key] ? R.t(key) : R.t("event_generic");
    var href = entryId ? "/entries/" + entryId : (ev.patient_id ? "/patients/" + ev.patient_id + "/timeline" : null);
    return { text: (urgent ? R.t("urgent_prefix") : "") + who + what + (title ? ": " + title : ""), urgent: urgent, href: href };
  }

  // Entries I just wrote or acknowledged on this page: their events are not news to me.
  R.ownEntries = {};
  var RANK = { "acknowledgement.requested": 0, "entry.created": 1, "entry.amended": 2 };

  function newsworthy(events) {
    // One toast per entry: "addressed to you" beats "new entry" when a commit produced both.
    var byEntry = {};
    var out = [];
    events.forEach(function (ev) {
      var id = eventEntryId(ev);
      if (ev.type === "sessions.ended" || ev.type === "draft.conflict") { return; }
      if (!id) { out.push(ev); return; }
      var kept = byEntry[id];
      var rank = RANK[ev.type] === undefined ? 9 : RANK[ev.type];
      if (!kept || rank < kept.rank) { byEntry[id] = { ev: Object.assign({}, ev, { urgent: ev.urgent || (kept && kept.ev.urgent) }), rank: rank }; }
    });
    Object.keys(byEntry).forEach(function (id) { out.push(byEntry[id].ev); });
    return out;
  }

  function handleEvents(events) {
    R.refresh().then(function (added) {
      newsworthy(events).forEach(function (ev) {
        var id = eventEntryId(ev);
        if (id && R.ownEntries[id]) { return; }
        var row = id ? document.querySelector('[data-live] [data-entry-id="' + id + '"]') : null;
        if (row && R.userId && row.dataset.authorId === R.userId && ev.type !== "entry.acknowledged") { return; }
        var shown = describe(ev, added);
        R.toast(shown.text, { urgent: shown.urgent, href: shown.href });
      });
      R.updateBadge();
      document.dispatchEvent(new CustomEvent("renkei:events", { detail: events }));
    });
  }

  function onEvent(ev) {
    if (typeof ev.seq === "number") {
      if (live.seq !== null && ev.seq <= live.seq) { return; }
      live.seq = ev.seq;
      try { sessionStorage.setItem(SEQ_KEY, String(ev.seq)); } catch (e) { /* storage refused: catch-up starts live */ }
    }
    if (!ev.type || ev.type === "auth_ok" || ev.type === "ready" || ev.type === "ping" || ev.type === "pong") { return; }
    // Several events of one commit arrive together: refresh the page once for all of them.
    live.pending.push(ev);
    clearTimeout(live.flush);
    live.flush = setTimeout(function () {
      var batch = live.pending;
      live.pending = [];
      handleEvents(batch);
    }, 250);
  }

  // Back to the sign-in page when the server says the session ended; not while this page is already signing
  // out, whose own navigation (the logout form) must not be aborted by a second one.
  function sessionEnded() {
    live.stopped = true;
    if (!R.leaving) { location.assign("/login"); }
  }

  // Signing out closes the socket first: the server's 4401 for this very logout is then no surprise.
  R.leave = function () {
    R.leaving = true;
    live.stopped = true;
    clearTimeout(live.timer);
    if (live.socket) { try { live.socket.close(1000); } catch (e) { /* already closing */ } }
  };
  var logoutForm = document.getElementById("logout-form");
  if (logoutForm) { logoutForm.addEventListener("submit", R.leave); }

  function connect() {
    if (live.stopped || !R.csrf) { return; }
    R.api("POST", "/api/v1/ws-ticket").then(function (res) {
      if (res.status === 401) { sessionEnded(); return; }
      if (res.status === 404 || res.status === 405) { live.stopped = true; return; }
      if (!res.ok || !res.body.ticket) { scheduleReconnect(); return; }
      var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
      var socket;
      try { socket = new WebSocket(url); } catch (e) { scheduleReconnect(); return; }
      live.socket = socket;
      socket.addEventListener("open", function () {
        var hello = { type: "auth", ticket: res.body.ticket };
        if (live.seq !== null) { hello.resume_after = live.seq; }
        socket.send(JSON.stringify(hello));
        live.attempts = 0;
        liveStatus(false);
        body.dataset.live = "connected";
      });
      socket.addEventListener("message", function (msg) {
        var data;
        try { data = JSON.parse(msg.data); } catch (e) { return; }
        (Array.isArray(data) ? data : [data]).forEach(onEvent);
      });
      socket.addEventListener("close", function (ev) {
        body.dataset.live = "closed";
        live.socket = null;
        // 4401/4403: the session ended (sign-out elsewhere, account disabled): back to sign-in.
        if (ev.code === 4401 || ev.code === 4403) { sessionEnded(); return; }
        scheduleReconnect();
      });
    }, function () { scheduleReconnect(); });
  }

  R.live = live;
  if (body.dataset.signedIn) {
    window.addEventListener("online", function () { if (!live.socket) { clearTimeout(live.timer); live.timer = null; connect(); } });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && !live.socket && !live.timer) { connect(); }
    });
    connect();
    R.updateBadge();
  }

  /* -- generic API forms: <form data-api="/api/v1/..." data-method="POST"> ---------------------- */

  function formJson(form) {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.disabled) { return; }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
      var value = el.value;
      if (value === "") { return; }
      if (el.type === "checkbox" && form.querySelectorAll('[name="' + el.name + '"]').length > 1) {
        (out[el.name] = out[el.name] || []).push(value);
      } else {
        out[el.name] = value;
      }
    });
    return out;
  }

  function byName(form) {
    return function (path) {
      var name = path.split("/")[1] || "";
      var input = name ? form.querySelector('[name="' + name + '"]') : null;
      return input ? (input.closest(".field, fieldset") || input.parentElement) : null;
    };
  }

  R.formJson = formJson;

  document.addEventListener("submit", function (ev) {
    var form = ev.target.closest && ev.target.closest("form[data-api]");
    if (!form) { return; }
    ev.preventDefault();
    if (form.dataset.busy) { return; }
    var payload = formJson(form);
    var method = form.dataset.method || "POST";
    var headers = {};
    if (form.hasAttribute("data-idempotent")) {
      form.dataset.key = form.dataset.key || R.newKey();
      headers["Idempotency-Key"] = form.dataset.key;
    }
    var buttons = form.querySelectorAll("button[type=submit]");
    form.dataset.busy = "1";
    buttons.forEach(function (b) { b.disabled = true; });
    var status = form.querySelector("[data-form-status]");
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("data-form-status", "");
      status.setAttribute("role", "status");
      status.className = "hint";
      form.appendChild(status);
    }
    status.textContent = "";
    R.sendWithRetry(function () {
      return R.api(method, form.dataset.api, { json: Object.keys(payload).length || method !== "DELETE" ? payload : undefined, headers: headers });
    }, {
      onWait: function () { status.textContent = R.t("offline_retrying"); },
      onBack: function () { status.textContent = ""; }
    }).then(function (res) {
      delete form.dataset.busy;
      buttons.forEach(function (b) { b.disabled = false; });
      if (res.ok) {
        var own = /\/entries\/([0-9a-f-]{36})\//.exec(form.dataset.api);
        if (own) { R.ownEntries[own[1]] = true; }
        if (form.dataset.next) { location.assign(form.dataset.next); return; }
        if (form.dataset.done) { status.textContent = form.dataset.done; }
        R.refresh().then(function () { if (!document.querySelector("[data-live]")) { location.reload(); } });
        return;
      }
      if (res.status === 401) { location.assign("/login"); return; }
      var fields = (res.body && res.body.fields) || [];
      if (!fields.length) { fields = [{ path: "", message_ja: R.t("request_failed") + "（" + (res.body.detail || res.status) + "）", message_en: R.t("request_failed") + " (" + (res.body.detail || res.status) + ")" }]; }
      var locate = byName(form);
      R.showErrors(form, fields, function (path) { return locate(path) || form; }, null);
    });
  });

  /* -- mark all read ---------------------------------------------------------------------------- */

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("[data-mark-read]");
    if (!button) { return; }
    var ids = (button.dataset.entryIds || "").split(",").filter(Boolean).slice(0, 200);
    button.disabled = true;
    R.api("POST", "/api/v1/patients/" + button.dataset.markRead + "/timeline/read", { json: { entry_ids: ids } })
      .then(function () { return R.refresh(); }, function () { R.toast(R.t("offline")); })
      .then(function () { button.disabled = false; });
  });

  /* -- quick filter of the patient list ---------------------------------------------------------- */

  function fold(text) {
    // NFKC, then hiragana to katakana, spaces dropped: ヤマダ, やまだ and ﾔﾏﾀﾞ match each other.
    return (text || "").normalize("NFKC").replace(/[\u3041-\u3096]/g, function (ch) {
      return String.fromCharCode(ch.charCodeAt(0) + 0x60);
    }).replace(/\s+/g, "").toLowerCase();
  }

  document.querySelectorAll("input[data-filter-target]").forEach(function (input) {
    function apply() {
      var list = document.querySelector(input.dataset.filterTarget);
      if (!list) { return; }
      var needle = fold(input.value);
      var shown = 0;
      list.querySelectorAll("[data-filter-text]").forEach(function (li) {
        var match = !needle || fold(li.dataset.filterText).indexOf(needle) !== -1;
        li.hidden = !match;
        if (match) { shown += 1; }
      });
      var empty = document.querySelector("[data-filter-empty]");
      if (empty) { empty.hidden = shown !== 0; }
    }
    input.addEventListener("input", apply);
    apply();
  });

  /* -- idle lock for shared tablets -------------------------------------------------------------- */

  var idleMinutes = Number(body.dataset.idleMinutes || 0);
  var lock = document.getElementById("idle-lock");
  if (idleMinutes > 0 && lock) {
    var limit = idleMinutes * 60;
    // Sign out a little before the server's own idle limit so the sign-out request still counts.
    var lockAt = Math.max(limit - 5, 30);
    var warnAt = Math.max(lockAt - 60, lockAt / 2);
    var lastActive = Date.now();
    var lastPing = Date.now();
    var warned = false;
    var seconds = document.getElementById("idle-seconds");
    var signingOut = false;
    var signOut = function () {
      if (signingOut) { return; }
      signingOut = true;
      body.classList.add("locked");
      R.leave();
      // form.submit() fires no submit event: R.leave above does what the listener would.
      if (logoutForm) { logoutForm.submit(); } else { location.assign("/login"); }
    };
    var activity = function () {
      if (warned) { return; }
      lastActive = Date.now();
    };
    ["pointerdown", "keydown", "touchstart", "input", "wheel"].forEach(function (name) {
      window.addEventListener(name, activity, { passive: true, capture: true });
    });
    document.getElementById("idle-stay").addEventListener("click", function () {
      warned = false;
      lock.hidden = true;
      lastActive = Date.now();
    });
    document.getElementById("idle-leave").addEventListener("click", signOut);
    R.idleTick = function () {
      var now = Date.now();
      var idle = (now - lastActive) / 1000;
      if (idle >= lockAt) { lock.hidden = true; signOut(); return; }
      if (idle >= warnAt) {
        if (!warned) { warned = true; lock.hidden = false; document.getElementById("idle-stay").focus(); }
        seconds.textContent = String(Math.ceil(lockAt - idle));
      }
      // Someone working on a long form makes no requests: tell the server the session is in use.
      if (!warned && now - lastPing > 240000 && now - lastActive < 240000) {
        lastPing = now;
        R.api("GET", "/api/v1/me").then(function (res) { if (res.status === 401) { signOut(); } }, function () { /* offline */ });
      }
    };
    setInterval(R.idleTick, 1000);
  }

  /* -- a toast for things a page asks to announce after navigation (?done=...) -------------------- */

  var params = new URLSearchParams(location.search);
  if (params.get("done") && strings["done_" + params.get("done")]) {
    R.toast(R.t("done_" + params.get("done")));
  }
})();
