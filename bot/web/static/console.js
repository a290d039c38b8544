// Keep the newest message in sight and the cursor in the answer box, as a chat app does.
document.addEventListener("DOMContentLoaded", () => {
  const end = document.getElementById("end");
  if (end) end.scrollIntoView({ block: "end" });
  const typed = document.getElementById("typed");
  if (typed && window.matchMedia("(min-width: 700px)").matches) typed.focus();
});
