// BloodMatch dispatcher console. No inline script anywhere (the Content-Security-Policy forbids it);
// every text from the server is set with textContent, never parsed as HTML.
'use strict';

const state = { csrf: null, may: {}, overview: null, outlines: null, signature: null, verified: true, leaving: false, source: null, firstView: false };
const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function api(path, options = {}) {
  const headers = Object.assign({ Accept: 'application/json' }, options.headers || {});
  if (options.method && options.method !== 'GET') headers['X-CSRF-Token'] = state.csrf || '';
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method: options.method || 'GET', headers, body: options.body, credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 401 && !state.leaving) { location.href = '/console/login?e=expired'; throw new Error('not logged in'); }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  return { status: response.status, body };
}

// ---- banner: "unable to verify — manual review required" -------------------------------------
function showBanner(message) {
  state.verified = false;
  const banner = $('banner');
  banner.textContent = message && message.startsWith('unable to verify') ? message : 'unable to verify — manual review required' + (message ? ': ' + message : '');
  banner.classList.remove('hidden');
  // No number is shown as if it were certain: the table and map are marked unverified.
  document.querySelectorAll('#centres tbody td.num').forEach((td) => { td.textContent = '—'; td.classList.add('unverified'); });
  document.querySelectorAll('#map .centre').forEach((c) => c.classList.add('unverified'));
  $('as-of').textContent = 'numbers withheld until the data can be verified';
}
function hideBanner() {
  state.verified = true;
  $('banner').classList.add('hidden');
}
function notice(text) {
  const n = $('notice');
  n.textContent = text;
  n.classList.toggle('hidden', !text);
}

// ---- live updates ------------------------------------------------------------------------------
function startLive() {
  const source = new EventSource('/console/api/live');
  state.source = source;
  source.addEventListener('status', (event) => {
    let s;
    try { s = JSON.parse(event.data); } catch (e) { return; }
    if (!s.verified) { showBanner(s.message); state.signature = null; return; }
    const signature = [s.index_version, s.held_units, s.stale_centres.join(','), s.no_data_centres.join(',')].join('|');
    if (!state.verified || signature !== state.signature) {
      state.signature = signature;
      loadOverview();
    }
  });
  source.onerror = () => {
    // The console itself is unreachable: say so; EventSource reconnects by itself.
    showBanner('the console could not be reached');
  };
}

// ---- tabs, session, start ------------------------------------------------------------------------
const TABS = ['centres', 'match', 'hospitals', 'orders', 'risk', 'trace'];
function selectTab(name) {
  if (name === 'orders') loadOrders();
  if (name === 'risk') loadRisk();
  for (const t of TABS) {
    $('tab-' + t).setAttribute('aria-selected', String(t === name));
    $('tab-' + t).setAttribute('tabindex', t === name ? '0' : '-1');
    $('panel-' + t).classList.toggle('hidden', t !== name);
  }
}

async function start() {
  const session = await api('/console/api/session');
  if (session.status !== 200) return;
  state.csrf = session.body.csrf_token;
  state.may = session.body.may;
  $('operator').textContent = session.body.operator;
  buildRequirements(session.body.requirements || []);
  $('role').textContent = session.body.role;
  if (!state.may.match) {
    $('tab-match').classList.add('hidden');
    notice('Viewer: you can look at everything; matching, holds and issues need a dispatcher or supervisor.');
  }
  for (const t of TABS) {
    $('tab-' + t).addEventListener('click', () => selectTab(t));
    // The tab pattern's keys: arrows move between the visible tabs, Home and End to the ends.
    $('tab-' + t).addEventListener('keydown', (event) => {
      const visible = TABS.filter((x) => !$('tab-' + x).classList.contains('hidden'));
      const at = visible.indexOf(t);
      const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: visible.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      const next = visible[(to + visible.length) % visible.length];
      selectTab(next);
      $('tab-' + next).focus();
    });
  }
  $('trace-form').addEventListener('submit', doTrace);
  $('component').addEventListener('change', loadOverview);
  $('group').addEventListener('change', loadOverview);
  $('match-form').addEventListener('submit', doMatch);
  $('logout').addEventListener('click', async () => {
    state.leaving = true;                       // nothing else navigates away meanwhile
    if (state.source) state.source.close();
    await api('/console/logout', { method: 'POST', body: '{}' });
    location.href = '/console/login?e=logged_out';
  });
  try {
    const outlines = await fetch('/console/assets/countries.geojson', { credentials: 'same-origin' });
    if (outlines.ok) state.outlines = await outlines.json();
  } catch (e) { /* the map draws the sites without outlines */ }
  await loadOverview();
  startLive();
}

document.addEventListener('DOMContentLoaded', start);
