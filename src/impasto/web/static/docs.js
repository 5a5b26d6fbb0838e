"use strict";
// A small, offline reader of /openapi.json (the usual interactive page loads its code from a CDN).
function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}
function inline(text) {
  // `code` spans; everything else stays text (never parsed as HTML).
  const p = el("p");
  text.split("`").forEach((part, i) => p.append(i % 2 ? el("code", part) : part));
  return p;
}
function markdown(text) {
  // Enough for these descriptions: paragraphs, ``` code blocks and `code` spans.
  const out = document.createDocumentFragment();
  text.split(/```\w*\n?/).forEach((part, i) => {
    if (!part.trim()) return;
    if (i % 2) out.append(el("pre", part.replace(/\n$/, "")));
    else for (const para of part.trim().split(/\n\s*\n/)) out.append(inline(para.replace(/\n/g, " ")));
  });
  return out;
}
function row(cells, head) {
  const tr = el("tr");
  for (const c of cells) tr.append(el(head ? "th" : "td", c));
  return tr;
}
fetch("/openapi.json").then((r) => r.json()).then((spec) => {
  document.getElementById("title").textContent = `${spec.info.title} ${spec.info.version}: HTTP API`;
  document.getElementById("intro").append(markdown(spec.info.description || ""));
  const ops = document.getElementById("ops");
  ops.replaceChildren();
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = el("section", undefined, "op");
      const h = el("h3");
      h.append(el("span", method.toUpperCase(), "method " + method), el("span", path, "path"),
        el("span", op.summary || "", "summary"));
      box.append(h);
      if (op.description) box.append(markdown(op.description));
      const params = op.parameters || [];
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["multipart/form-data"];
      const props = body ? Object.entries(body.schema.properties || {}) : [];
      if (params.length || props.length) {
        const table = el("table");
        table.append(row(["name", "in", "type", "default", "meaning"], true));
        for (const p of params) table.append(row([p.name, p.in, (p.schema && p.schema.type) || "", "", p.description || ""]));
        const required = new Set((body && body.schema.required) || []);
        for (const [name, s] of props) {
          const type = s.enum ? s.enum.join(" | ") : (s.type === "array" ? "file, repeatable" : (s.format === "binary" ? "file" : s.type));
          table.append(row([name + (required.has(name) ? " *" : ""), "form", type,
            s.default === undefined ? "" : String(s.default), s.description || ""]));
        }
        box.append(table);
      }
      const codes = Object.entries(op.responses || {}).map(([code, r]) => `${code} ${r.description || ""}`.trim());
      if (codes.length) box.append(el("p", "Answers: " + codes.join(" · "), "summary"));
      ops.append(box);
    }
  }
}).catch((e) => { document.getElementById("ops").textContent = "Could not load /openapi.json: " + e; });
