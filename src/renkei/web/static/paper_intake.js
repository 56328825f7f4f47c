/* The paper-intake page: send the chosen photo or scan to the API and show where it was filed, or why
   not, in the page's language. One attempt per press: the upload is not retried by itself, so a form is
   never filed twice behind the user's back. */
(function () {
  "use strict";

  var R = window.Renkei;
  var form = document.getElementById("paper-intake-form");
  if (!form || !R) { return; }
  var camera = document.getElementById("pi-camera");
  var file = document.getElementById("pi-file");
  var chosen = document.getElementById("pi-chosen");
  var errorBox = document.getElementById("pi-error");
  var working = document.getElementById("pi-working");
  var button = document.getElementById("pi-submit");
  var ja = document.body.dataset.lang !== "en";

  function picked() {
    return (camera.files && camera.files[0]) || (file.files && file.files[0]) || null;
  }

  function onPick(other) {
    return function () {
      // The last choice wins: a photo taken after choosing a file replaces it, and the other way round.
      if (this.files && this.files.length) { other.value = ""; }
      var f = picked();
      chosen.textContent = f ? R.t("paper_intake_chosen", { name: f.name }) : R.t("paper_intake_nothing_chosen");
      errorBox.hidden = true;
    };
  }
  camera.addEventListener("change", onPick(file));
  file.addEventListener("change", onPick(camera));

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    errorBox.focus();
  }

  function message(res) {
    var body = res.body || {};
    if (res.status === 404) { return R.t("paper_intake_not_yours"); }
    if (res.status === 413) { return R.t("paper_intake_too_large"); }
    var field = (body.fields || [])[0];
    if (field) { return ja ? field.message_ja : field.message_en; }
    return body.detail || R.t("request_failed");
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = picked();
    if (!f) { showError(R.t("paper_intake_choose_first")); return; }
    var data = new FormData();
    data.append("file", f, f.name || "paper");
    var patient = form.querySelector("[name=patient_id]").value;
    if (patient) { data.append("patient_id", patient); }
    button.disabled = true;
    working.hidden = false;
    errorBox.hidden = true;
    R.api("POST", "/api/v1/paper-intake", { form: data }).then(function (res) {
      button.disabled = false;
      working.hidden = true;
      if (res.ok) {
        var done = res.body.kind === "consent_document" ? "document=" + res.body.document_id : "filed=" + res.body.id;
        location.assign("/paper-intake?" + done);
        return;
      }
      showError(message(res));
    }, function () {
      button.disabled = false;
      working.hidden = true;
      showError(R.t("paper_intake_offline"));
    });
  });
})();
