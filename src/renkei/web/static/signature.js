/* Consent on the tablet: a signature drawn with a finger on a canvas, uploaded as PNG with the consent.
   The consent is recorded through the API (password again), then the signature and the scan follow.
   One Idempotency-Key per submission (and per file): a request retried after a dropped network is
   answered with the first answer instead of recording the consent twice. */
(function () {
  "use strict";

  var R = window.Renkei;
  var form = document.querySelector("form[data-consent-form]");
  if (!form || !R) { return; }
  var patientId = form.dataset.patientId;
  var canvas = document.getElementById("signature-pad");
  var signed = false;

  /* -- the pad --------------------------------------------------------------------------------- */

  var ctx = canvas.getContext("2d");
  function size() {
    var ratio = window.devicePixelRatio || 1;
    var rect = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(rect.width * ratio));
    canvas.height = Math.max(1, Math.round(rect.height * ratio));
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, rect.width, rect.height);
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111111";
    signed = false;
  }
  size();
  window.addEventListener("resize", function () { if (!signed) { size(); } });

  var drawing = false;
  function point(ev) {
    var rect = canvas.getBoundingClientRect();
    return { x: ev.clientX - rect.left, y: ev.clientY - rect.top };
  }
  canvas.addEventListener("pointerdown", function (ev) {
    drawing = true;
    canvas.setPointerCapture(ev.pointerId);
    var p = point(ev);
    ctx.beginPath();
    ctx.moveTo(p.x, p.y);
    ctx.lineTo(p.x + 0.1, p.y + 0.1);
    ctx.stroke();
    signed = true;
    document.getElementById("signature-error").hidden = true;
  });
  canvas.addEventListener("pointermove", function (ev) {
    if (!drawing) { return; }
    var p = point(ev);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
  });
  ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
    canvas.addEventListener(name, function () { drawing = false; });
  });
  form.querySelector("[data-signature-clear]").addEventListener("click", size);

  /* -- recording ------------------------------------------------------------------------------- */

  function body() {
    var raw = R.formJson(form);
    ["organisation_ids", "excluded_categories"].forEach(function (name) {
      if (raw[name] !== undefined && !Array.isArray(raw[name])) { raw[name] = [raw[name]]; }
    });
    return raw;
  }

  function locate(path) {
    var name = path.split("/")[1] || "";
    var input = name ? form.querySelector('[name="' + name + '"]') : null;
    if (!input) { return null; }
    return input.type === "radio" || input.type === "checkbox" ? input.closest("fieldset") : wrap(input);
  }

  function wrap(input) {
    // Inputs that sit directly in the form get a holder so the message lands right after them.
    var holder = input.nextElementSibling && input.nextElementSibling.hasAttribute("data-error-slot")
      ? input.nextElementSibling : null;
    if (!holder) {
      holder = document.createElement("div");
      holder.setAttribute("data-error-slot", "");
      input.insertAdjacentElement("afterend", holder);
    }
    return holder;
  }

  function pngBlob() {
    return new Promise(function (resolve) { canvas.toBlob(resolve, "image/png"); });
  }

  var progress = form.querySelector("[data-consent-progress]");
  function say(text) { if (progress) { progress.textContent = text; } }
  // Shown while a request waits for the network, cleared when it gets through.
  var retrying = { onWait: function () { say(R.t("consent_retrying")); }, onBack: function () { say(R.t("posting")); } };

  function uploadDocument(consentId, file, name) {
    var data = new FormData();
    data.append("file", file, name);
    var headers = { "Idempotency-Key": R.newKey() };
    return R.sendWithRetry(function () {
      return R.api("POST", "/api/v1/patients/" + patientId + "/consents/" + consentId + "/attachments", { form: data, headers: headers });
    }, retrying);
  }

  var summary = document.getElementById("consent-errors");
  var submission = null;  // {key, body}: kept while the same submission is retried or re-sent unchanged
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var payload = body();
    if (payload.method === "tablet_signature" && !signed) {
      document.getElementById("signature-error").hidden = false;
      canvas.focus();
      return;
    }
    var button = form.querySelector("button[type=submit]");
    if (button.disabled) { return; }
    button.disabled = true;
    var scan = form.querySelector("input[data-scan]").files[0];
    // What makes it the same submission (the server leaves the password out of it as well).
    var text = JSON.stringify(Object.assign({}, payload, { password: null, otp: null }));
    if (!submission || submission.body !== text) { submission = { key: R.newKey(), body: text }; }
    var headers = { "Idempotency-Key": submission.key };
    say(R.t("posting"));
    R.sendWithRetry(function () {
      return R.api("POST", "/api/v1/patients/" + patientId + "/consents", { json: payload, headers: headers });
    }, retrying).then(function (res) {
      if (!res.ok) {
        say("");
        // A refused submission (wrong password, a field to fix) is a new one when sent again.
        submission = null;
        button.disabled = false;
        var fields = (res.body && res.body.fields) || [];
        if (!fields.length) { fields = [{ path: "", message_ja: res.body.detail || R.t("request_failed"), message_en: res.body.detail || R.t("request_failed") }]; }
        R.showErrors(form, fields, locate, summary);
        return;
      }
      var jobs = [];
      if (signed) { jobs.push(pngBlob().then(function (blob) { return uploadDocument(res.body.id, blob, "signature.png"); })); }
      if (scan) { jobs.push(uploadDocument(res.body.id, scan, scan.name || "scan")); }
      return Promise.all(jobs).then(function (results) {
        var failed = results.some(function (r) { return !r.ok; });
        location.assign("/patients/" + patientId + "/consents" + (failed ? "?done=consent_document_failed" : "?done=consent_recorded"));
      });
    });
  });
})();
