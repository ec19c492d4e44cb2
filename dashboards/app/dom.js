// dom.js - building the page from data without ever parsing it as HTML.
//
// h(tag, props, ...children): props are attributes (class, id, aria-*, role, type, value,
// for, ...) set with setAttribute, or event handlers (onClick: fn -> addEventListener).
// Children are nodes or strings; strings become text nodes. Nothing here touches
// innerHTML, so a value from traffic (an SNI, a URL, a user agent) or from a user (a
// comment, a rule) is shown as the text it is.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'checked' || k === 'disabled' || k === 'selected') {
      el[k] = Boolean(v);
      if (v) el.setAttribute(k, '');
    } else if (k === 'value') {
      el.value = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}
