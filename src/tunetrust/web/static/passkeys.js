// The passkey ceremonies: the one part of the site that needs a script (the browser's
// WebAuthn API). Options come from the server as JSON with base64url fields.
"use strict";
(function () {
  const b64 = {
    decode(s) {
      const pad = "=".repeat((4 - (s.length % 4)) % 4);
      const bin = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
      return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
    },
    encode(buf) {
      const bytes = new Uint8Array(buf);
      let bin = "";
      bytes.forEach((b) => { bin += String.fromCharCode(b); });
      return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  async function post(url, csrf, body) {
    const r = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.detail || ("the server answered " + r.status));
    return data;
  }

  function creation(o) {
    o.challenge = b64.decode(o.challenge);
    o.user.id = b64.decode(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = b64.decode(c.id); });
    return { publicKey: o };
  }

  function request(o) {
    o.challenge = b64.decode(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = b64.decode(c.id); });
    return { publicKey: o };
  }

  function credentialJSON(c) {
    const r = c.response, out = { id: c.id, rawId: b64.encode(c.rawId), type: c.type,
      clientExtensionResults: c.getClientExtensionResults(), response: {} };
    if (c.authenticatorAttachment) out.authenticatorAttachment = c.authenticatorAttachment;
    out.response.clientDataJSON = b64.encode(r.clientDataJSON);
    if (r.attestationObject) {
      out.response.attestationObject = b64.encode(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = b64.encode(r.authenticatorData);
      out.response.signature = b64.encode(r.signature);
      if (r.userHandle) out.response.userHandle = b64.encode(r.userHandle);
    }
    return out;
  }

  function wire(formId, create) {
    const form = document.getElementById(formId);
    if (!form) return;
    const status = document.getElementById(formId + "-status");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!window.PublicKeyCredential) {
        status.textContent = "This browser has no passkeys. Use a recovery code, or another browser.";
        return;
      }
      const fields = {};
      new FormData(form).forEach((v, k) => { fields[k] = v === "on" ? true : v; });
      try {
        status.classList.remove("problem");
        status.textContent = "Waiting for your device…";
        const options = await post(form.dataset.options, form.dataset.csrf, fields);
        const credential = create
          ? await navigator.credentials.create(creation(options))
          : await navigator.credentials.get(request(options));
        const done = await post(form.dataset.finish, form.dataset.csrf, credentialJSON(credential));
        status.textContent = "Done.";
        window.location.assign(done.next || "/");
      } catch (e) {
        status.classList.add("problem");
        status.setAttribute("role", "alert");
        status.textContent = "That did not work: " + (e && e.message ? e.message : e);
      }
    });
  }

  wire("register", true);
  wire("add-passkey", true);
  wire("signin", false);
})();
