'use strict';
// Formatting shared by every page: HTML escaping and an escaping template tag,
// numbers, bytes, durations, rates (message_stats.*_details.rate, when the node has
// them) and API paths.

class Raw {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}

/** HTML that is inserted as it is (already escaped). */
function raw(s) { return new Raw(s); }

function esc(v) {
  return String(v).replace(/[&<>"']/g, c => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function renderValue(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(renderValue).join('');
  if (v === null || v === undefined || v === false) return '';
  return esc(v);
}

/** A template tag that escapes every value unless it is raw() or h`...` itself. */
function h(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => { out += renderValue(v) + strings[i + 1]; });
  return raw(out);
}

function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '?';
  return Number(n).toLocaleString('en-US');
}

function fmtBytes(b) {
  if (b === null || b === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(b);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function fmtUptime(ms) {
  if (ms === null || ms === undefined) return '?';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${hh}h`;
  if (hh > 0) return `${hh}h ${mm}m`;
  return `${mm}m ${s % 60}s`;
}

/** `obj[key + '_details'].rate` as "1.5/s", or '' when the node does not report it. */
function fmtRate(obj, key) {
  const details = obj && obj[`${key}_details`];
  if (!details || typeof details.rate !== 'number') return '';
  return `${details.rate.toFixed(1)}/s`;
}

function fmtBool(b) { return b ? '\u25CF' : '\u25CB'; }

/** A JSON value (arguments, properties) for a table cell. */
function fmtJson(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object' && Object.keys(v).length === 0) return '';
  return JSON.stringify(v);
}

function enc(s) { return encodeURIComponent(s); }

/** `VHOST/NAME` for an API path, each part encoded (the default vhost is %2F). */
function objPath(vhost, name) { return `${enc(vhost)}/${enc(name)}`; }

/** The value of a form's field by name, trimmed. */
function field(form, name) {
  const el = form.elements[name];
  return el ? el.value.trim() : '';
}

/** A collapsible section like RabbitMQ's, with an id for tests and links. */
function section(id, title, body, closed) {
  return h`<section class="box${closed ? ' closed' : ''}" id="${id}">
    <h2 onclick="this.parentNode.classList.toggle('closed')">${title}</h2>
    <div class="hider">${body}</div></section>`;
}

/** Put h`...` HTML (or a list of such) into `el`. */
function setHtml(el, html) {
  if (el) el.innerHTML = Array.isArray(html) ? renderValue(html) : String(html);
}

/** The pages by route name; each page file adds its own (see app.js). */
const Pages = {};

/** Whether the signed-in user has one of `tags` (App.user from /api/whoami). */
function hasTag(user, ...tags) {
  const mine = user && Array.isArray(user.tags) ? user.tags : String((user && user.tags) || '').split(',');
  return mine.some(t => tags.includes(t.trim()));
}
