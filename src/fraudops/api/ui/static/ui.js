// fraudops review UI: keyboard shortcuts on the case page (f fraud, l legitimate,
// e escalate), and no double submission of a verdict or of a form marked
// data-submit-once (the models page's promotion and rollback). No inline script anywhere:
// the content security policy allows scripts from /ui/static only.
(function () {
  "use strict";

  // Keys typed into a text box are text; a ticked checkbox (the card history's "not
  // theirs") keeps the focus but takes no text, so the shortcuts still work there.
  function typing(target) {
    if (!(target instanceof Element)) return false;
    if (target.matches('input[type="checkbox"], input[type="radio"]')) return false;
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  document.addEventListener("keydown", function (event) {
    const form = document.getElementById("verdict-form");
    if (!form) return;
    if (event.key === "Escape" && typing(event.target)) {
      event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || typing(event.target)) return;
    const button = form.querySelector('button[data-key="' + event.key.toLowerCase() + '"]');
    if (!button || button.disabled) return;
    event.preventDefault();
    if (button.value === "escalate" && !form.elements.note.value.trim()) {
      document.getElementById("shortcut-hint").textContent =
        "To escalate, write a note for the lead first, then press Esc and e (or click Escalate).";
      form.elements.note.focus();
      return;
    }
    form.requestSubmit(button);
  });

  function onceOnly(form) {
    return form.id === "verdict-form" || form.hasAttribute("data-submit-once");
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !onceOnly(form)) return;
    if (form.dataset.sent === "yes") {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "yes";
  });

  // A page restored from the back-forward cache keeps its forms' marks; it is a page
  // shown again, so its forms may be sent again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sent]").forEach(function (form) {
      delete form.dataset.sent;
    });
  });
})();
