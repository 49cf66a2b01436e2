// The demo phone shows new messages as they arrive, without reloading the page: it fetches
// the same page every few seconds and swaps in the inbox if it changed. New messages are
// announced once in a polite live region; focus and scroll position stay where they are.
// "Pause live updates" stops it (WCAG 2.2.2); "Refresh" works with or without scripts.
(() => {
  const inbox = document.querySelector("[data-inbox]");
  const status = document.querySelector("[data-phone-status]");
  const pause = document.querySelector("[data-pause]");
  if (!inbox || !status || !pause) return;
  const POLL_MS = 3000;
  let paused = false;

  const ids = (list) => [...list.querySelectorAll("[data-message-id]")].map((li) => li.dataset.messageId);

  pause.hidden = false;
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume live updates" : "Pause live updates";
    status.textContent = paused ? "Live updates paused." : "Live updates on.";
  });

  const update = async () => {
    if (paused || document.hidden) return;
    try {
      const response = await fetch(window.location.href, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.querySelector("[data-inbox]");
      if (!fresh) return;
      const known = new Set(ids(inbox));
      const arrived = ids(fresh).filter((id) => !known.has(id));
      if (!arrived.length) return;
      inbox.replaceChildren(...[...fresh.children].map((node) => document.importNode(node, true)));
      const empty = document.querySelector("[data-no-messages]");
      if (empty) empty.hidden = true;
      const time = new Date().toLocaleTimeString();
      status.textContent = arrived.length === 1 ? `1 new message (${time}).` : `${arrived.length} new messages (${time}).`;
    } catch (error) {
      // The shop is restarting: try again at the next tick.
    }
  };
  setInterval(update, POLL_MS);
})();
