// Building DOM without markup: every string becomes a text node, never HTML.
// h("td", {class: "num", title: "..."}, "42", otherNode) — properties are attributes
// (set with setAttribute), `on*` functions are event listeners, children are nodes or text.

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Replace the options of a <select>, keeping the chosen value when it is still there. */
export function setOptions(select, options, keep = select.value) {
  const same = select.options.length === options.length
    && options.every(([value, label], i) => select.options[i].value === value && select.options[i].text === label);
  if (same) return;
  select.replaceChildren(...options.map(([value, label]) => h("option", { value }, label)));
  if (options.some(([value]) => value === keep)) select.value = keep;
}

/** Text for plotly labels: plotly reads <b>, <a href> … in its strings, so escape < > &. */
export function plotText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
