"use strict";
/* Stencil gallery: cards rendered a chunk at a time as the reader scrolls, review marks kept in
   localStorage per batch, exported as a small JSON file for `stencil review import`. */
(() => {
  const data = JSON.parse(document.getElementById("gallery-data").textContent);
  const items = data.items;
  const byId = new Map(items.map((it) => [it.id, it]));
  const storeKey = "stencil-review:" + data.batch_id;
  const CHUNK = 96;
  const grid = document.getElementById("grid");
  const sentinel = document.getElementById("sentinel");
  const showing = document.getElementById("showing");
  let marks = loadMarks();
  let filter = "all";
  let shown = items;
  let rendered = 0;

  function loadMarks() {
    let stored = null;
    try { stored = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { stored = null; }
    const out = {};
    if (stored && typeof stored === "object" && stored.marks) {
      for (const [id, mark] of Object.entries(stored.marks)) {
        const it = byId.get(id);
        if (it && mark && mark.o === it.o && it.s === "succeeded") out[id] = mark;  // same image only
      }
      return out;
    }
    for (const it of items) {  // first visit: start from the marks already recorded
      if (it.m && it.s === "succeeded") out[it.id] = { m: it.m, n: it.n || "", o: it.o };
    }
    return out;
  }
  function saveMarks() {
    try { localStorage.setItem(storeKey, JSON.stringify({ marks })); } catch (e) { /* full or off */ }
    countMarks();
  }
  function countMarks() {
    let approved = 0, rejected = 0;
    for (const mark of Object.values(marks)) mark.m === "approved" ? approved++ : rejected++;
    document.getElementById("n-approved").textContent = approved;
    document.getElementById("n-rejected").textContent = rejected;
  }
  function matches(it) {
    if (filter === "all") return true;
    if (filter.startsWith("qa:")) return (it.q || "none") === filter.slice(3);
    if (filter.startsWith("review:")) {
      const want = filter.slice(7);
      const mark = marks[it.id] ? marks[it.id].m : "none";
      return mark === want;
    }
    return it.s === filter;
  }
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function card(it) {
    const node = el("article", "card s-" + it.s);
    node.dataset.id = it.id;
    node.dataset.status = it.s;
    const media = el("div", "media");
    media.title = it.p;
    if (it.t) {
      const img = el("img");
      img.loading = "lazy";
      img.decoding = "async";
      img.alt = it.k + " #" + it.v;
      if (it.w) { img.width = it.w; img.height = it.h; }
      img.src = it.t;
      media.append(img);
    } else {
      const reason = el("div", "reason");
      reason.append(el("b", "", it.s.replace("_", " ")), document.createTextNode(it.r || "no image"));
      media.append(reason);
    }
    const meta = el("div", "meta");
    meta.append(el("span", "key", it.k), el("span", "var", "#" + it.v), el("span", "badge", it.s),
      el("span", "cost", "$" + it.c.toFixed(4)));
    if (it.q) {
      const qa = el("span", "qa qa-" + it.q, "checks " + it.q);
      if (it.qn) qa.title = it.qn;
      meta.append(qa);
    }
    node.append(media, meta);
    if (it.q === "failed" && it.qn) node.append(el("p", "qa-note", it.qn));
    if (it.s === "succeeded") {
      const actions = el("div", "actions");
      const approve = el("button", "approve", "Approve");
      const reject = el("button", "reject", "Reject");
      approve.type = reject.type = "button";
      actions.append(approve, reject);
      const note = el("input", "note");
      note.type = "text";
      note.placeholder = "note (optional)";
      note.maxLength = 2000;
      note.setAttribute("aria-label", "review note for " + it.k + " #" + it.v);
      node.append(actions, note);
      paint(node, it);
    }
    return node;
  }
  function paint(node, it) {
    const mark = marks[it.id];
    node.classList.toggle("m-approved", !!mark && mark.m === "approved");
    node.classList.toggle("m-rejected", !!mark && mark.m === "rejected");
    node.querySelector(".approve").setAttribute("aria-pressed", String(!!mark && mark.m === "approved"));
    node.querySelector(".reject").setAttribute("aria-pressed", String(!!mark && mark.m === "rejected"));
    const note = node.querySelector(".note");
    note.hidden = !mark;
    if (mark && note.value !== mark.n) note.value = mark.n;
  }
  function more() {
    const end = Math.min(rendered + CHUNK, shown.length);
    const frag = document.createDocumentFragment();
    for (let i = rendered; i < end; i++) frag.append(card(shown[i]));
    grid.append(frag);
    rendered = end;
    showing.textContent = "showing " + shown.length + " of " + items.length;
    if (rendered < shown.length) { observer.unobserve(sentinel); observer.observe(sentinel); }
  }
  function apply() {
    shown = items.filter(matches);
    rendered = 0;
    grid.replaceChildren();
    more();
  }
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && rendered < shown.length) more();
  }, { rootMargin: "1200px 0px" });

  document.getElementById("filters").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-filter]");
    if (!button) return;
    filter = button.dataset.filter;
    for (const b of document.querySelectorAll("#filters button")) {
      b.setAttribute("aria-pressed", String(b === button));
    }
    apply();
  });
  grid.addEventListener("click", (event) => {
    const node = event.target.closest(".card");
    if (!node) return;
    const it = byId.get(node.dataset.id);
    const button = event.target.closest("button");
    if (button && (button.classList.contains("approve") || button.classList.contains("reject"))) {
      const want = button.classList.contains("approve") ? "approved" : "rejected";
      const mark = marks[it.id];
      if (mark && mark.m === want) delete marks[it.id];
      else marks[it.id] = { m: want, n: mark ? mark.n : "", o: it.o };
      saveMarks();
      paint(node, it);
      if (want === "rejected" && marks[it.id]) node.querySelector(".note").focus();
    } else if (event.target.closest(".media")) {
      document.getElementById("prompt-title").textContent = it.k + " #" + it.v + " (" + it.s + ")";
      document.getElementById("prompt-text").textContent = it.p;
      const full = document.getElementById("prompt-full");
      full.hidden = !it.u;
      if (it.u) full.href = it.u;
      document.getElementById("prompt-dialog").showModal();
    }
  });
  grid.addEventListener("input", (event) => {
    if (!event.target.classList.contains("note")) return;
    const id = event.target.closest(".card").dataset.id;
    if (marks[id]) { marks[id].n = event.target.value; saveMarks(); }
  });
  document.getElementById("export").addEventListener("click", () => {
    const out = [];
    for (const it of items) {
      const mark = marks[it.id];
      if (mark) out.push({ request_id: it.id, key: it.k, variant: it.v, mark: mark.m, note: mark.n || "" });
    }
    const blob = new Blob([JSON.stringify({ batch_id: data.batch_id, marks: out }, null, 2) + "\n"],
      { type: "application/json" });
    const link = document.getElementById("download");
    link.href = URL.createObjectURL(blob);
    link.download = data.batch_id + "-review.json";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  });
  document.getElementById("clear").addEventListener("click", () => {
    if (!confirm("Clear every mark on this page?")) return;
    marks = {};
    saveMarks();
    apply();
  });
  countMarks();
  apply();
})();
