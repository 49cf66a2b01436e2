// Keeps the "Send a new code" button disabled for the seconds the server says, counting down.
document.querySelectorAll("button[data-wait]").forEach((button) => {
  let left = parseInt(button.dataset.wait, 10) || 0;
  const label = button.textContent;
  const tick = () => {
    if (left <= 0) {
      button.disabled = false;
      button.textContent = label;
      return;
    }
    button.disabled = true;
    button.textContent = `${label} (${left} s)`;
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
});
