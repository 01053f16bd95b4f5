// Governance console: two small enhancements; every page works without them.
// 1. Re-check an exchange's inclusion proof in the browser (RFC 9162 §2.1.3.2, WebCrypto SHA-256).
// 2. Start a full log verification and show its progress without reloading.
"use strict";

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function bytesToHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function nodeHash(left, right) {
  const data = new Uint8Array(1 + left.length + right.length);
  data[0] = 1;
  data.set(left, 1);
  data.set(right, 1 + left.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

async function rootFromProof(index, size, leaf, proof) {
  if (index >= size) return null;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        do { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } while (!(fn % 2 === 1 || fn === 0));
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

async function checkProofInBrowser(el) {
  if (!window.crypto || !crypto.subtle) {
    el.textContent = "Your browser cannot check the proof here (WebCrypto needs HTTPS).";
    return;
  }
  const proof = el.dataset.proof ? el.dataset.proof.split(",").map(hexToBytes) : [];
  const root = await rootFromProof(Number(el.dataset.leafIndex), Number(el.dataset.treeSize),
    hexToBytes(el.dataset.leafHash), proof);
  const ok = root !== null && bytesToHex(root) === el.dataset.root;
  el.dataset.result = ok ? "ok" : "bad";
  el.textContent = ok
    ? "Verified in your browser too: the proof leads to the signed root."
    : "Your browser could NOT verify the proof against the signed root.";
}

function watchVerification(form) {
  const box = document.getElementById("verify-progress");
  const statusUrl = form.dataset.statusUrl;
  async function poll() {
    const response = await fetch(statusUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) { box.textContent = "Could not read progress."; return; }
    const s = await response.json();
    if (s.running) {
      box.textContent = `Verifying: ${s.done} of ${s.total} entries…`;
      const bar = document.createElement("progress");
      bar.max = s.total || 1; bar.value = s.done;
      box.appendChild(bar);
      setTimeout(poll, 500);
    } else if (s.run_id !== null) {
      box.textContent = s.ok
        ? `Verification finished: intact, ${s.entries_checked} entries checked.`
        : `Verification finished: problems found: ${s.problems.join("; ")}`;
      box.dataset.result = s.ok ? "ok" : "bad";
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const csrf = form.querySelector("input[name=csrf]").value;
    const response = await fetch(form.action, {
      method: "POST",
      headers: { Accept: "application/json", "X-CSRF-Token": csrf },
    });
    if (response.status === 202 || response.status === 409) {
      box.textContent = "Verification started…";
      poll();
    } else {
      box.textContent = "The verification could not be started.";
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const proof = document.getElementById("proof-browser");
  if (proof) checkProofInBrowser(proof);
  const form = document.getElementById("verify-form");
  if (form) watchVerification(form);
});
