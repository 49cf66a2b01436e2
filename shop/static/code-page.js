// The code page as a live status: delivery and countdowns without a reload, and WebOTP.
//
// The server renders the same facts (the page works with scripts off, by reload); this
// script polls the page's own JSON status (same origin, the page's session, GET changes
// nothing) every few seconds and counts down in between. Only a change of delivery status
// is announced (the paragraph is a polite live region); the countdowns update quietly.
(() => {
  const box = document.querySelector("[data-code-status]");
  if (!box) return;
  const statusUrl = box.dataset.codeStatus;
  const $ = (selector) => document.querySelector(selector);
  const resend = $("[data-resend]");
  const note = $("[data-resend-note]");
  const input = document.querySelector("[data-code-form] input[name=code]");
  const POLL_MS = 3000;
  let state = null;
  let receivedAt = 0;

  const duration = (seconds) => {
    const s = Math.max(0, Math.ceil(seconds));
    const minutes = Math.floor(s / 60);
    const rest = s % 60;
    const pad = (n) => String(n).padStart(2, "0");
    if (minutes >= 60) return `${Math.floor(minutes / 60)} h ${pad(minutes % 60)} min`;
    return minutes ? `${minutes} min ${pad(rest)} s` : `${rest} s`;
  };
  // "1 attempt", "4 attempts": as the server writes them (shop.otp.outcomes.attempts_left).
  const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;
  const show = (selector, visible) => {
    const element = $(selector);
    if (element) element.hidden = !visible;
  };
  const setText = (selector, text) => {
    const element = $(selector);
    if (element && element.textContent !== text) element.textContent = text;
  };

  // Seconds left on a server countdown, counted on from when the status arrived.
  const left = (name) => (state ? state[name] - (Date.now() - receivedAt) / 1000 : 0);

  const render = () => {
    if (!state) return;
    const expiresIn = left("expires_in_seconds");
    const live = state.live && expiresIn > 0;
    show("[data-when-live]", live);
    show("[data-when-dead]", !live);
    const queued = left("queued_seconds");
    show("[data-when-queued]", live && queued > 0);
    show("[data-when-sent]", live && queued <= 0);
    setText("[data-queued-seconds]", `in ${plural(Math.max(0, Math.ceil(queued)), "second")}`);
    // A queued code's clock starts when it goes out.
    setText("[data-expires-in]", duration(queued > 0 ? expiresIn - queued : expiresIn));
    setText("[data-expiry-from]", queued > 0 ? "once it goes out" : "more");
    setText("[data-tries-left]", `${plural(state.tries_left, "attempt")} left`);
    const delivery = $("[data-delivery]");
    if (delivery) {
      if (delivery.textContent !== state.delivery_text) delivery.textContent = state.delivery_text;
      delivery.classList.toggle("delivery-failed", state.delivery_failed);
    }
    if (!resend || !note) return;
    const wait = live ? left("resend_in_seconds") : 0;
    if (state.resend_blocked) {
      resend.disabled = true;
      const retry = left("resend_retry_seconds");
      setText("[data-resend-note]", `A new code cannot be sent now. ${state.resend_blocked}` +
        (state.resend_retry_seconds && retry > 0 ? ` You can ask again in ${duration(retry)}.` : ""));
    } else if (wait > 0) {
      resend.disabled = true;
      setText("[data-resend-note]", `A new code replaces the old one. You can ask for one in ${duration(wait)}.`);
    } else {
      resend.disabled = false;
      setText("[data-resend-note]", "A new code replaces the old one: you can ask for one now.");
    }
  };

  const poll = async () => {
    try {
      const response = await fetch(statusUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.ok) {
        state = await response.json();
        receivedAt = Date.now();
        render();
      }
    } catch (error) {
      // Offline for a moment: keep counting down from the last status.
    }
  };

  // Start from the status the server rendered the page with, then poll.
  state = JSON.parse(document.getElementById("code-status-data").textContent);
  receivedAt = Date.now();
  poll();
  setInterval(() => {
    if (!document.hidden) poll();
  }, POLL_MS);
  setInterval(render, 1000);

  if (input) {
    input.focus();
    // WebOTP: the SMS ends with "@host #code"; a supporting browser offers it to the page.
    if ("OTPCredential" in window) {
      const abort = new AbortController();
      input.form.addEventListener("submit", () => abort.abort());
      navigator.credentials
        .get({ otp: { transport: ["sms"] }, signal: abort.signal })
        .then((credential) => {
          if (credential && credential.code) {
            input.value = credential.code;
            // Submit at once unless the form still needs something (a new password).
            const empty = [...input.form.elements].find(
              (element) => element.tagName === "INPUT" && element.type !== "hidden" && !element.value,
            );
            if (empty) empty.focus();
            else input.form.requestSubmit();
          }
        })
        .catch(() => {});
    }
  }
})();
