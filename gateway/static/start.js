// reliq dashboard: wires the header and starts the 2 s refresh. Loaded last (dashboard.html).
"use strict";
$("#auth-form").onsubmit = (ev) => {
  ev.preventDefault();
  S.token = $("#token").value.trim();
  sessionStorage.setItem("reliq.token", S.token);
  $("#auth").hidden = true;
  render(true);
};
$("#pause").onclick = () => {
  S.paused = !S.paused;
  $("#pause").textContent = S.paused ? "resume" : "pause";
  refresh();
};
window.addEventListener("hashchange", () => render(false));
S.timer = setInterval(() => { if (!S.paused && !document.hidden) refresh(true); }, REFRESH_MS);
render(true);
