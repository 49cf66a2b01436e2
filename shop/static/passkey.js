// Passkeys: confirming with one (navigator.credentials.get) and adding one (create).
//
// The button asks the page's own URL for the ceremony's options (a POST: the server keeps the
// challenge, single use), lets the browser and the authenticator do the ceremony, puts the
// answer (the credential as JSON) in the form's hidden field and submits the form, so the
// server answers with a page as for any other form. Nothing here decides anything.
(() => {
  const supported =
    "PublicKeyCredential" in window &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";

  for (const form of document.querySelectorAll("[data-passkey-form]")) {
    const button = form.querySelector("[data-passkey-button]");
    const note = form.querySelector("[data-passkey-note]");
    const creating = form.dataset.passkeyForm === "create";
    if (!supported) {
      button.disabled = true;
      note.textContent = "This browser cannot use passkeys: use another way on this page.";
      continue;
    }
    button.addEventListener("click", async () => {
      button.disabled = true;
      note.textContent = creating
        ? "Follow your device's steps to make the passkey."
        : "Confirm on your device: fingerprint, face or screen lock.";
      try {
        const response = await fetch(form.dataset.optionsUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: {
            Accept: "application/json",
            "X-CSRFToken": form.querySelector("input[name=csrf_token]").value,
          },
        });
        const body = await response.json();
        if (!response.ok) {
          note.textContent = body.message || "Passkeys cannot be used here now.";
          button.disabled = false;
          return;
        }
        // A passkey belongs to a domain (the relying party id): on another host name of
        // the same shop, such as 127.0.0.1 for localhost, the browser would refuse it.
        const rpId = creating ? body.rp && body.rp.id : body.rpId;
        const host = window.location.hostname;
        if (rpId && host !== rpId && !host.endsWith(`.${rpId}`)) {
          note.textContent = `Passkeys for this shop work at ${rpId}: open the shop there to use one, or use another way on this page.`;
          button.disabled = false;
          return;
        }
        const credential = creating
          ? await navigator.credentials.create({
              publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(body),
            })
          : await navigator.credentials.get({
              publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(body),
            });
        form.querySelector("input[name=answer]").value = JSON.stringify(credential.toJSON());
        note.textContent = "Checking…";
        form.submit();
      } catch (error) {
        note.textContent =
          "The passkey was not used (cancelled, timed out, or not on this device). " +
          "Try again, or use another way on this page.";
        button.disabled = false;
      }
    });
  }
})();
