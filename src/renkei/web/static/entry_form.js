/* The entry form generated from a sheet's JSON Schema: repeatable groups, photos, draft autosave,
   posting with one Idempotency-Key per form (retried unchanged after a dropped network), and the
   API's field errors shown next to the fields their JSON pointers name. */
(function () {
  "use strict";

  var R = window.Renkei;
  var form = document.getElementById("entry-form");
  if (!form || !R) { return; }

  var patientId = form.dataset.patientId;
  var sheet = form.dataset.sheet;
  var version = Number(form.dataset.version);
  var mode = form.dataset.mode;
  var entryId = form.dataset.entryId || null;
  var etag = form.dataset.etag || null;
  // One key for the final post of this form, made once: every retry sends it again.
  var postKey = R.newKey();
  var draft = { id: mode === "draft" ? entryId : null, etag: mode === "draft" ? etag : null, key: R.newKey(),
                pendingCreate: null, timer: null, saving: false };
  var dirty = false;
  var submitting = false;
  var uploads = [];
  var saveState = document.getElementById("save-state");
  var netBanner = document.getElementById("net-banner");
  var summary = document.getElementById("error-summary");

  /* -- JSON pointers ------------------------------------------------------------------------ */

  function tokens(pointer) {
    return pointer.split("/").slice(1).map(function (t) { return t.replace(/~1/g, "/").replace(/~0/g, "~"); });
  }

  function setAt(root, pointer, value, append) {
    var parts = tokens(pointer);
    var node = root;
    for (var i = 0; i < parts.length - 1; i++) {
      var key = parts[i];
      if (node[key] === undefined) { node[key] = /^\d+$/.test(parts[i + 1]) ? [] : {}; }
      node = node[key];
    }
    var last = parts[parts.length - 1];
    if (append) {
      if (!Array.isArray(node[last])) { node[last] = []; }
      node[last].push(value);
    } else {
      node[last] = value;
    }
  }

  function compact(value) {
    if (Array.isArray(value)) {
      // Items of a repeatable group keep their places so error pointers still name the right item.
      for (var i = 0; i < value.length; i++) { if (value[i] === undefined) { value[i] = {}; } else { value[i] = compact(value[i]); } }
      return value;
    }
    if (value && typeof value === "object") {
      Object.keys(value).forEach(function (k) {
        var v = compact(value[k]);
        if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0) { delete value[k]; }
        else { value[k] = v; }
      });
    }
    return value;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localToIso(raw) {
    var d = new Date(raw);
    if (isNaN(d.getTime())) { return raw; }
    var offset = -d.getTimezoneOffset();
    var sign = offset >= 0 ? "+" : "-";
    var abs = Math.abs(offset);
    return raw.length === 16 ? raw + ":00" + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60)
                             : raw + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
  }

  function isoToLocal(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ""; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  /* -- reading the form ----------------------------------------------------------------------- */

  function collect() {
    var data = {};
    form.querySelectorAll("[data-path]").forEach(function (el) {
      // The entry's own files are sent beside the data (`attachment_ids`), not inside it.
      if (el.closest("[data-envelope]")) { return; }
      var path = el.dataset.path;
      var type = el.dataset.type;
      if (el.type === "radio") {
        if (!el.checked || el.value === "") { return; }
        setAt(data, path, type === "boolean" ? el.value === "true" : el.value);
        return;
      }
      if (type === "multi") {
        if (el.type === "checkbox" && !el.checked) { return; }
        setAt(data, path, el.value, true);
        return;
      }
      var raw = (el.value || "").trim();
      if (raw === "") { return; }
      var value = raw;
      if (type === "integer" || type === "number") {
        var n = Number(raw);
        value = Number.isFinite(n) ? n : raw;
      } else if (type === "datetime") {
        value = localToIso(raw);
      }
      setAt(data, path, value);
    });
    // Repeat items left completely empty still count, so the API can say which one needs filling in.
    form.querySelectorAll("[data-repeat]").forEach(function (rep) {
      var items = rep.querySelector(":scope > [data-items]").children;
      for (var i = 0; i < items.length; i++) {
        var pointer = rep.dataset.repeat + "/" + i;
        var parts = tokens(pointer);
        var node = data;
        for (var j = 0; j < parts.length - 1 && node; j++) { node = node[parts[j]]; }
        if (!node || node[parts[parts.length - 1]] === undefined) { setAt(data, pointer, {}); }
      }
    });
    data = compact(data);
    // A required group left empty is still sent, so the API names its missing fields, not the group.
    form.querySelectorAll("fieldset[data-required][data-field]").forEach(function (group) {
      var parts = tokens(group.dataset.field);
      var node = data;
      for (var k = 0; k < parts.length - 1 && node; k++) { node = node[parts[k]]; }
      if (node && typeof node === "object" && node[parts[parts.length - 1]] === undefined) { node[parts[parts.length - 1]] = {}; }
    });
    return data;
  }

  function recipients() {
    return Array.prototype.map.call(form.querySelectorAll("input[data-recipient]:checked"), function (el) {
      return el.dataset.recipient === "user" ? { user_id: el.value } : { organisation_id: el.value };
    });
  }

  function attachmentIds() {
    return Array.prototype.map.call(form.querySelectorAll("[data-envelope] input[type=hidden][data-path]"),
                                    function (el) { return el.value; });
  }

  function priority() {
    var urgent = form.querySelector('[data-meta="urgent"]');
    return urgent && urgent.checked ? "urgent" : "normal";
  }

  /* -- repeatable groups ---------------------------------------------------------------------- */

  function idOf(pointer) { return "f" + pointer.replace(/\//g, "-").replace(/~/g, "_"); }

  var REWRITTEN = ["name", "id", "for", "data-path", "data-field", "data-repeat", "data-attachments", "data-upload",
                   "aria-describedby", "aria-labelledby"];

  function renumber(rep) {
    var items = rep.querySelector(":scope > [data-items]").children;
    for (var i = 0; i < items.length; i++) {
      var item = items[i];
      var oldPointer = item.dataset.field;
      var newPointer = rep.dataset.repeat + "/" + i;
      item.querySelector("[data-item-number]").textContent = String(i + 1);
      if (oldPointer === newPointer) { continue; }
      var swaps = [[oldPointer + "/", newPointer + "/"], [idOf(oldPointer) + "-", idOf(newPointer) + "-"]];
      [item].concat(Array.prototype.slice.call(item.querySelectorAll("*"))).forEach(function (el) {
        REWRITTEN.forEach(function (attr) {
          var value = el.getAttribute(attr);
          if (value === null) { return; }
          if (value === oldPointer) { el.setAttribute(attr, newPointer); return; }
          swaps.forEach(function (s) { value = value.split(s[0]).join(s[1]); });
          el.setAttribute(attr, value);
        });
      });
      // Templates of nested groups hold their markup apart from the live tree.
      item.querySelectorAll("template").forEach(function (tpl) {
        var html = tpl.innerHTML;
        swaps.forEach(function (s) { html = html.split(s[0]).join(s[1]); });
        tpl.innerHTML = html;
      });
    }
  }

  function addItem(rep) {
    var holder = rep.querySelector(":scope > [data-items]");
    var max = Number(rep.dataset.max || 0);
    if (max && holder.children.length >= max) { return null; }
    var tpl = rep.querySelector(":scope > template[data-item-template]");
    var html = tpl.innerHTML.split(rep.dataset.placeholder).join(String(holder.children.length));
    var wrap = document.createElement("div");
    wrap.innerHTML = html.trim();
    var item = wrap.firstElementChild;
    holder.appendChild(item);
    renumber(rep);
    return item;
  }

  form.addEventListener("click", function (ev) {
    var add = ev.target.closest("[data-add-item]");
    if (add) {
      var item = addItem(add.closest("[data-repeat]"));
      if (item) {
        var first = item.querySelector("input, select, textarea");
        if (first) { first.focus(); }
        markDirty();
      }
      return;
    }
    var remove = ev.target.closest("[data-remove-item]");
    if (remove) {
      var rep = remove.closest("[data-repeat]");
      remove.closest("[data-item]").remove();
      renumber(rep);
      rep.querySelector("[data-add-item]").focus();
      markDirty();
    }
  });

  /* -- photos --------------------------------------------------------------------------------- */

  function photoFigure(field, attachmentId, src, captionText) {
    var fig = document.createElement("figure");
    var img = document.createElement("img");
    img.src = src;
    img.alt = R.t("photo_alt");
    var caption = document.createElement("figcaption");
    caption.textContent = captionText;
    fig.appendChild(img);
    fig.appendChild(caption);
    field.querySelector("[data-previews]").appendChild(fig);
    if (attachmentId) { attach(field, fig, attachmentId); }
    return fig;
  }

  function attach(field, fig, attachmentId) {
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.value = attachmentId;
    hidden.dataset.path = field.dataset.attachments;
    hidden.dataset.type = "multi";
    fig.appendChild(hidden);
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary";
    remove.textContent = R.t("photo_remove");
    remove.addEventListener("click", function () { fig.remove(); markDirty(); });
    fig.appendChild(remove);
    fig.querySelector("figcaption").textContent = R.t("photo_attached");
  }

  function upload(field, file) {
    var preview = URL.createObjectURL(file);
    var fig = photoFigure(field, null, preview, R.t("photo_uploading"));
    var key = R.newKey();
    var job = R.sendWithRetry(function () {
      var data = new FormData();
      data.append("file", file, file.name || "photo.jpg");
      data.append("sheet", sheet);
      return R.api("POST", "/api/v1/patients/" + patientId + "/attachments", { form: data, headers: { "Idempotency-Key": key } });
    }, {
      onWait: function () { fig.querySelector("figcaption").textContent = R.t("photo_waiting"); }
    }).then(function (res) {
      if (res.ok) {
        attach(field, fig, res.body.id);
        markDirty();
      } else {
        fig.querySelector("figcaption").textContent = R.t(res.status === 413 ? "photo_too_large" : "photo_rejected");
        var drop = document.createElement("button");
        drop.type = "button";
        drop.className = "secondary";
        drop.textContent = R.t("photo_remove");
        drop.addEventListener("click", function () { fig.remove(); });
        fig.appendChild(drop);
      }
    });
    uploads.push(job);
    return job;
  }

  form.addEventListener("change", function (ev) {
    var input = ev.target.closest("input[data-upload]");
    if (!input) { return; }
    var field = input.closest("[data-attachments]");
    Array.prototype.forEach.call(input.files, function (file) { upload(field, file); });
    input.value = "";
  });

  /* -- filling the form from a draft or the version being amended ------------------------------ */

  function fill(value, pointer) {
    var rep = form.querySelector('[data-repeat="' + pointer + '"]');
    if (rep && Array.isArray(value)) {
      value.forEach(function (item, i) { addItem(rep); fill(item, pointer + "/" + i); });
      return;
    }
    var photos = form.querySelector('[data-attachments="' + pointer + '"]');
    if (photos && Array.isArray(value)) {
      value.forEach(function (id) { photoFigure(photos, id, "/api/v1/attachments/" + id, ""); });
      return;
    }
    if (Array.isArray(value)) {
      value.forEach(function (v) {
        var box = form.querySelector('input[data-path="' + pointer + '"][value="' + String(v).replace(/"/g, "") + '"]');
        if (box) { box.checked = true; }
      });
      return;
    }
    if (value && typeof value === "object") {
      Object.keys(value).forEach(function (k) { fill(value[k], pointer + "/" + k.replace(/~/g, "~0").replace(/\//g, "~1")); });
      return;
    }
    var fields = form.querySelectorAll('[data-path="' + pointer + '"]');
    fields.forEach(function (el) {
      if (el.type === "radio") { el.checked = el.value === String(value); }
      else if (el.dataset.type === "datetime") { el.value = isoToLocal(value); }
      else { el.value = String(value); }
    });
  }

  try {
    var prefill = JSON.parse(document.getElementById("entry-prefill").textContent || "{}");
    Object.keys(prefill || {}).forEach(function (k) { fill(prefill[k], "/" + k); });
    var files = document.getElementById("entry-prefill-files");
    if (files) { fill(JSON.parse(files.textContent || "[]"), "/attachment_ids"); }
  } catch (e) { /* a form without prefill */ }
  // A group that must have items starts with as many empty ones as it needs.
  form.querySelectorAll("[data-repeat][data-min]").forEach(function (rep) {
    var holder = rep.querySelector(":scope > [data-items]");
    while (holder.children.length < Number(rep.dataset.min) && addItem(rep)) { /* add */ }
  });

  /* -- errors ----------------------------------------------------------------------------------- */

  function locate(path) {
    var pointer = path.indexOf("/data") === 0 ? path.slice(5) : path;
    if (path.indexOf("/recipients") === 0) { pointer = "/recipients"; }
    while (pointer) {
      var el = form.querySelector('[data-field="' + pointer + '"]');
      if (el) { return el; }
      pointer = pointer.slice(0, pointer.lastIndexOf("/"));
    }
    return null;
  }

  function showProblems(fields) {
    R.showErrors(form, fields, locate, summary);
  }

  function problem(ja, en) { return [{ path: "", message_ja: ja, message_en: en }]; }

  /* -- drafts ------------------------------------------------------------------------------------ */

  var transcribing = Boolean(form.dataset.paperIntakeId);

  function state(text) { if (saveState) { saveState.textContent = text; } }

  function clock() { var d = new Date(); return pad(d.getHours()) + ":" + pad(d.getMinutes()); }

  function markDirty() {
    dirty = true;
    // No drafts for an amendment, nor for a transcription from paper: a draft cannot carry the paper link, so
    // a draft posted later would leave the paper awaiting transcription (the form is kept until it is sent).
    if (mode === "amend" || transcribing) { return; }
    state(R.t("draft_unsaved"));
    clearTimeout(draft.timer);
    draft.timer = setTimeout(function () { saveDraft(false); }, 4000);
  }

  form.addEventListener("input", function (ev) { if (!ev.target.closest("input[data-upload]")) { markDirty(); } });
  form.addEventListener("change", function (ev) { if (!ev.target.closest("input[data-upload]")) { markDirty(); } });

  function draftBody() {
    return { data: collect(), status: "draft", priority: priority(), recipients: recipients(),
             attachment_ids: attachmentIds() };
  }

  function saveDraft(manual) {
    if (mode === "amend" || transcribing || submitting) { return Promise.resolve(); }
    if (draft.saving) { draft.again = true; return Promise.resolve(); }
    draft.saving = true;
    clearTimeout(draft.timer);
    var changedSince = false;
    form.addEventListener("input", function () { changedSince = true; }, { once: true });
    var request;
    if (!draft.id) {
      // A draft whose creation got no answer is resent unchanged (same key) before anything else.
      var create = draft.pendingCreate || { key: draft.key, body: Object.assign({ sheet: sheet, version: version }, draftBody()) };
      draft.pendingCreate = create;
      request = R.api("POST", "/api/v1/patients/" + patientId + "/entries", { json: create.body, headers: { "Idempotency-Key": create.key } });
    } else {
      request = R.api("PUT", "/api/v1/entries/" + draft.id, { json: draftBody(), headers: { "If-Match": draft.etag } });
    }
    return request.then(function (res) {
      draft.saving = false;
      if (res.ok) {
        var created = !draft.id;
        draft.id = res.body.id;
        draft.etag = res.headers.get("ETag");
        draft.pendingCreate = null;
        draft.key = R.newKey();
        if (!changedSince) { dirty = false; }
        state(R.t("draft_saved_at", { at: clock() }));
        if (created && dirty) { return saveDraft(false); }
      } else if (res.status === 412) {
        // Edited in another tab: this screen holds what the person is typing now, so it wins.
        return R.api("GET", "/api/v1/entries/" + draft.id).then(function (latest) {
          draft.etag = latest.headers.get("ETag");
          return saveDraft(manual);
        });
      } else if (res.status === 422) {
        draft.pendingCreate = null;
        draft.key = R.newKey();
        state(R.t("draft_not_saved_invalid"));
        if (manual) { showProblems(res.body.fields || []); }
      } else {
        draft.pendingCreate = null;
        state(R.t("draft_not_saved"));
      }
      if (draft.again) { draft.again = false; return saveDraft(false); }
    }, function () {
      draft.saving = false;
      state(R.t("draft_offline"));
      draft.timer = setTimeout(function () { saveDraft(false); }, 10000);
    });
  }

  var saveButton = document.getElementById("save-draft");
  if (saveButton) { saveButton.addEventListener("click", function () { R.clearErrors(form); saveDraft(true); }); }

  window.addEventListener("beforeunload", function (ev) {
    if (dirty && !submitting) { ev.preventDefault(); ev.returnValue = ""; }
  });

  /* -- posting ------------------------------------------------------------------------------------ */

  var cancelled = false;
  document.getElementById("retry-now").addEventListener("click", function () { if (R.retryNow) { R.retryNow(); } });

  function submit() {
    if (submitting) { return; }
    R.clearErrors(form);
    summary.hidden = true;
    submitting = true;
    cancelled = false;
    var button = document.getElementById("submit-entry");
    button.disabled = true;
    state(R.t("posting"));
    Promise.all(uploads).then(function () {
      var data = collect();
      var url, body;
      var headers = { "Idempotency-Key": postKey };
      if (mode === "amend") {
        var reason = form.querySelector('[data-meta="reason"]').value.trim();
        url = "/api/v1/entries/" + entryId + "/amend";
        body = { data: data, reason: reason, priority: priority(), attachment_ids: attachmentIds() };
        headers["If-Match"] = etag;
      } else {
        url = "/api/v1/patients/" + patientId + "/entries";
        body = { sheet: sheet, version: version, data: data, status: "final", priority: priority(), recipients: recipients(),
                 attachment_ids: attachmentIds() };
        if (form.dataset.paperIntakeId) { body.paper_intake_id = form.dataset.paperIntakeId; }
      }
      return R.sendWithRetry(function () { return R.api("POST", url, { json: body, headers: headers }); }, {
        cancelled: function () { return cancelled; },
        onWait: function () {
          netBanner.hidden = false;
          state(R.t("offline_kept"));
        },
        onBack: function () { netBanner.hidden = true; }
      });
    }).then(function (res) {
      submitting = false;
      button.disabled = false;
      netBanner.hidden = true;
      if (res.ok) {
        dirty = false;
        var done = function () { location.assign("/patients/" + patientId + "/timeline?done=" + (mode === "amend" ? "amended" : "posted")); };
        if (draft.id && mode !== "amend") {
          // The posted entry replaces the draft: the draft is marked discarded (records are never deleted).
          R.api("POST", "/api/v1/entries/" + draft.id + "/entered-in-error", { json: { reason: R.t("draft_posted_reason") } }).then(done, done);
        } else { done(); }
        return;
      }
      state("");
      if (res.status === 401) { showProblems(problem("サインインし直してください（入力内容はこの画面に残っています）", "Please sign in again (what you typed is still on this screen)")); return; }
      if (res.body && res.body.error === "idempotency_key_reused") {
        showProblems(problem("この記録はすでに送信されています。タイムラインで確認してください。", "This entry was already sent; check the timeline."));
        return;
      }
      if (res.status === 412) {
        showProblems(problem("この記録は他の画面で更新されました。開き直してから訂正してください。", "This entry was changed elsewhere; open it again before amending."));
        return;
      }
      var fields = (res.body && res.body.fields) || [];
      showProblems(fields.length ? fields : problem(R.t("request_failed") + "（" + (res.body.detail || res.status) + "）",
                                                    R.t("request_failed") + " (" + (res.body.detail || res.status) + ")"));
    }, function () {
      submitting = false;
      button.disabled = false;
      netBanner.hidden = true;
      state(R.t("post_cancelled"));
    });
  }

  form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
})();
