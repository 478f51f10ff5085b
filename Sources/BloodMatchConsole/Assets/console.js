// BloodMatch dispatcher console. No inline script anywhere (the Content-Security-Policy forbids it);
// every text from the server is set with textContent, never parsed as HTML.
'use strict';

const state = { csrf: null, may: {}, overview: null, outlines: null, signature: null, hospitals: [], lastAnswer: null, verified: true };
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

// ---- map ---------------------------------------------------------------------------------------
function projection(points) {
  let minLon = Infinity, maxLon = -Infinity, minLat = Infinity, maxLat = -Infinity;
  for (const [lon, lat] of points) {
    minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
    minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
  }
  if (!isFinite(minLon)) { minLon = -180; maxLon = 180; minLat = -60; maxLat = 80; }
  const padLon = Math.max(1, (maxLon - minLon) * 0.08), padLat = Math.max(1, (maxLat - minLat) * 0.08);
  minLon -= padLon; maxLon += padLon; minLat -= padLat; maxLat += padLat;
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);   // equirectangular, true at the middle latitude
  const w = (maxLon - minLon) * k, h = maxLat - minLat;
  const scale = Math.min(1000 / w, 700 / h);
  const ox = (1000 - w * scale) / 2, oy = (700 - h * scale) / 2;
  return ([lon, lat]) => [ox + (lon - minLon) * k * scale, oy + (maxLat - lat) * scale];
}

function drawMap(o) {
  const map = $('map');
  while (map.firstChild) map.removeChild(map.firstChild);
  const sites = o.centres.map((c) => [c.lon, c.lat]).concat(o.hospitals.map((h) => [h.lon, h.lat]));
  const project = projection(sites);
  if (state.outlines) {
    const land = svg('g', { 'aria-hidden': 'true' });
    for (const f of state.outlines.features) {
      let d = '';
      for (const polygon of f.geometry.coordinates) for (const ring of polygon) {
        ring.forEach((p, i) => { const [x, y] = project(p); d += (i ? 'L' : 'M') + x.toFixed(1) + ' ' + y.toFixed(1); });
        d += 'Z';
      }
      land.appendChild(svg('path', { d, class: 'land' }));
    }
    map.appendChild(land);
  }
  const byId = {};
  for (const c of o.centres) byId[c.id] = c;
  if (o.last_run) {
    const lines = svg('g', { 'aria-hidden': 'true' });
    for (const s of o.last_run.shipments) {
      const [x1, y1] = project(s.from), [x2, y2] = project(s.to);
      lines.appendChild(svg('line', { x1, y1, x2, y2, class: 'shipment' }));
    }
    map.appendChild(lines);
  }
  const hospitals = svg('g');
  for (const h of o.hospitals) {
    const [x, y] = project([h.lon, h.lat]);
    const size = h.pending_total > 0 ? 8 : 5;
    const r = svg('rect', { x: x - size / 2, y: y - size / 2, width: size, height: size, class: 'hospital', 'data-id': h.id });
    const t = svg('title'); t.textContent = h.name + (h.pending_total ? ' — ' + h.pending_total + ' pending order(s)' : '');
    r.appendChild(t);
    hospitals.appendChild(r);
    if (h.pending_total > 0) {
      const label = svg('text', { x: x + 6, y: y - 5, class: 'pending' });
      label.textContent = h.pending_total;
      hospitals.appendChild(label);
    }
  }
  map.appendChild(hospitals);
  const centres = svg('g');
  const maxUnits = Math.max(1, ...o.centres.map((c) => c.units || 0));
  for (const c of o.centres) {
    const [x, y] = project([c.lon, c.lat]);
    const radius = c.state === 'no_data' ? 9 : 5 + 18 * Math.sqrt((c.units || 0) / maxUnits);
    const classes = ['centre', c.state === 'no_data' ? 'nodata' : dosClass(c.days_of_supply)];
    if (c.state === 'stale') classes.push('stale');
    const circle = svg('circle', { cx: x, cy: y, r: radius, class: classes.join(' '), 'data-id': c.id, 'data-state': c.state });
    const t = svg('title'); t.textContent = c.name + ': ' + describeCentre(c);
    circle.appendChild(t);
    centres.appendChild(circle);
    if (c.state !== 'current') {
      const right = x > 880;   // near the right edge the label goes to the left of the circle
      const label = svg('text', { x: right ? x - radius - 3 : x + radius + 3, y: y + 4, class: 'flag', 'text-anchor': right ? 'end' : 'start' });
      label.textContent = c.state === 'no_data' ? 'no data' : 'stale ' + c.data_age_minutes + ' min';
      centres.appendChild(label);
    }
  }
  map.appendChild(centres);
}

function dosClass(dos) {
  if (dos === null || dos === undefined) return 'dos-none';
  if (dos < 1) return 'dos-low';
  if (dos < 3) return 'dos-mid';
  return 'dos-ok';
}
function describeCentre(c) {
  if (c.state === 'no_data') return 'no data — stock unknown, confirm by phone';
  const dos = c.days_of_supply === null ? 'no issue history' : c.days_of_supply + ' days of supply';
  return c.units + ' usable units, ' + dos + (c.state === 'stale' ? ' — last known stock, ' + c.data_age_minutes + ' min old' : '');
}

function drawTables(o) {
  const body = $('centres').querySelector('tbody');
  body.replaceChildren();
  const order = { no_data: 0, stale: 1, current: 2 };
  const list = o.centres.slice().sort((a, b) => (order[a.state] - order[b.state]) || a.name.localeCompare(b.name));
  for (const c of list) {
    const tr = el('tr', { 'data-id': c.id, 'data-state': c.state, class: c.state === 'no_data' ? 'nodata' : c.state });
    tr.appendChild(el('th', { scope: 'row' }, c.name));
    tr.appendChild(el('td', { class: 'num' }, c.units === null ? '?' : c.units));
    tr.appendChild(el('td', { class: 'num' }, c.days_of_supply === null ? '—' : c.days_of_supply));
    tr.appendChild(el('td', { class: 'state' }, c.note));
    body.appendChild(tr);
  }
  const hbody = $('hospitals').querySelector('tbody');
  hbody.replaceChildren();
  for (const h of o.hospitals.filter((x) => x.pending_total > 0).sort((a, b) => b.pending_total - a.pending_total)) {
    const tr = el('tr', { 'data-id': h.id });
    tr.appendChild(el('th', { scope: 'row' }, h.name));
    for (const u of ['emergency', 'urgent', 'routine']) tr.appendChild(el('td', { class: 'num' }, h.pending_orders[u] || 0));
    hbody.appendChild(tr);
  }
  if (!hbody.firstChild) { const tr = el('tr'); tr.appendChild(el('td', { colspan: '4' }, 'no pending orders')); hbody.appendChild(tr); }
  const select = $('m-hospital');
  if (select.options.length !== o.hospitals.length) {
    const current = select.value;
    select.replaceChildren(...o.hospitals.slice().sort((a, b) => a.name.localeCompare(b.name)).map((h) => el('option', { value: h.id }, h.name + ' (' + h.id + ')')));
    if (current) select.value = current;
  }
}

async function loadOverview() {
  const component = $('component').value;
  const [abo, rhd] = ($('group').value || ' ').split(' ');
  const query = new URLSearchParams({ component });
  if (abo && rhd) { query.set('abo', abo); query.set('rhd', rhd); }
  let result;
  try {
    result = await api('/console/api/overview?' + query.toString());
  } catch (e) {
    showBanner('the console could not be reached');
    return;
  }
  if (result.status !== 200) {
    showBanner(result.body && result.body.message ? result.body.message : 'the data could not be read (HTTP ' + result.status + ')');
    return;
  }
  hideBanner();
  state.overview = result.body;
  drawMap(result.body);
  drawTables(result.body);
  if (!state.firstView) { state.firstView = true; performance.mark('bm-first-view'); }   // read by Jobs/bench/console.sh
  const stale = result.body.centres.filter((c) => c.state === 'stale').length;
  const unknown = result.body.centres.filter((c) => c.state === 'no_data').length;
  $('as-of').textContent = 'verified ' + result.body.verified_at.replace('T', ' ').replace('Z', ' UTC') + ' · ' + result.body.centres.length + ' centres, ' + stale + ' stale, ' + unknown + ' without data';
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

// ---- match, hold, issue ------------------------------------------------------------------------
function matchBody() {
  const recipient = { abo: $('m-abo').value, rhd: $('m-rhd').value, sex: $('m-sex').value };
  if ($('m-age').value !== '') recipient.age = Number($('m-age').value);
  const requirements = Array.from(document.querySelectorAll('.requirements input:checked')).map((i) => i.value);
  return {
    hospital_id: $('m-hospital').value, component: $('m-component').value, recipient,
    quantity: Number($('m-quantity').value), requirements, urgency: $('m-urgency').value,
  };
}

function renderAnswer(d) {
  const box = $('answer');
  box.replaceChildren();
  box.classList.remove('hidden');
  box.appendChild(el('h2', { id: 'outcome', 'data-outcome': d.outcome }, 'Outcome: ' + d.outcome.replace(/_/g, ' ') + (d.replayed ? ' (already decided under this form)' : '')));
  box.appendChild(el('p', { id: 'summary' }, d.summary));
  box.appendChild(el('p', { id: 'decision-id', 'data-decision': d.decision_id, class: 'decision-id' }, 'Decision ' + d.decision_id + ' (recorded; evaluated ' + d.evaluated_at.replace('T', ' ').replace('Z', ' UTC') + ')'));
  if (d.flags.length) {
    const flags = el('p', { class: 'flags', id: 'flags' });
    for (const f of d.flags) flags.appendChild(el('span', { 'data-flag': f }, f.replace(/_/g, ' ')));
    box.appendChild(flags);
  }
  if (d.warnings.length) {
    const ul = el('ul', { class: 'warnings' });
    for (const w of d.warnings) ul.appendChild(el('li', {}, w));
    box.appendChild(ul);
  }
  if (d.units.length) {
    const table = el('table', { class: 'grid', id: 'chosen' });
    table.appendChild(el('caption', {}, 'Chosen units'));
    const head = el('tr');
    for (const h of ['#', 'DIN', 'Product', 'Group', 'Centre', 'ETA (min)', 'Expires', 'Why']) head.appendChild(el('th', { scope: 'col' }, h));
    table.appendChild(el('thead')).appendChild(head);
    const body = el('tbody');
    for (const u of d.units) {
      const tr = el('tr', { 'data-din': u.din });
      for (const v of [u.order, u.din, u.product_code, u.group, u.centre_id + (u.stale_centre ? ' (stale)' : ''), u.eta_minutes + (u.late ? ' late' : ''),
        u.expires_at.replace('T', ' ').replace(':00Z', ' UTC'), u.rule + (u.flags.length ? ' — ' + u.flags.join(', ') : '')]) tr.appendChild(el('td', {}, v));
      body.appendChild(tr);
    }
    table.appendChild(body);
    box.appendChild(table);
  }
  if (d.not_chosen.length) {
    box.appendChild(el('h3', {}, 'Not chosen'));
    const ul = el('ul', { id: 'not-chosen' });
    for (const r of d.not_chosen) ul.appendChild(el('li', {}, r.centre_id + ': ' + r.count + ' unit(s) — ' + r.reason.replace(/_/g, ' ')));
    box.appendChild(ul);
  }
  if (d.centres_not_checked.length) box.appendChild(el('p', { class: 'warnings' }, 'Not checked (no data): ' + d.centres_not_checked.join(', ')));
  if (['fulfilled', 'partial', 'late'].includes(d.outcome) && state.may.reserve) {
    const actions = el('div', { class: 'actions' });
    actions.appendChild(el('label', { for: 'hold-minutes' }, 'Hold for (minutes)'));
    const minutes = el('input', { id: 'hold-minutes', type: 'number', min: '1', max: '4320', value: '240' });
    actions.appendChild(minutes);
    const reserve = el('button', { type: 'button', id: 'reserve' }, 'Reserve');
    const key = newKey();
    reserve.addEventListener('click', () => doReserve(d.decision_id, Number(minutes.value), key));
    actions.appendChild(reserve);
    box.appendChild(actions);
  }
}

function renderHold(r) {
  const box = $('answer');
  const old = $('hold'); if (old) old.remove();
  const section = el('section', { id: 'hold', 'data-reservation': r.reservation_id });
  section.appendChild(el('h3', {}, 'Held for ' + r.hospital + ' until ' + r.held_until.replace('T', ' ').replace(':00Z', ' UTC')));
  const ul = el('ul');
  for (const u of r.units) ul.appendChild(el('li', { 'data-din': u.din }, u.din + ' ' + u.product_code + ' (' + u.group + ') at ' + u.centre + ' — ' + u.state));
  section.appendChild(ul);
  const actions = el('div', { class: 'actions' });
  const release = el('button', { type: 'button', id: 'release', class: 'secondary' }, 'Release');
  release.addEventListener('click', () => doRelease(r.reservation_id));
  actions.appendChild(release);
  if (state.may.issue) {
    const issue = el('button', { type: 'button', id: 'issue' }, 'Issue');
    const key = newKey();
    issue.addEventListener('click', () => doIssue(r.reservation_id, key));
    actions.appendChild(issue);
  } else {
    actions.appendChild(el('span', { id: 'issue-not-allowed' }, 'Your role (' + $('role').textContent + ') may not issue units.'));
  }
  section.appendChild(actions);
  box.appendChild(section);
}

function showResult(id, text, ok) {
  const old = $(id); if (old) old.remove();
  const p = el('p', { id, role: 'status', class: ok ? '' : 'warnings' }, text);
  $('answer').appendChild(p);
}

async function doMatch(event) {
  event.preventDefault();
  const button = $('match');
  button.disabled = true;
  try {
    const key = button.dataset.key || newKey();
    button.dataset.key = key;                     // a resubmission of the same form reuses its key
    const result = await api('/console/api/match', { method: 'POST', body: JSON.stringify(matchBody()), headers: { 'Idempotency-Key': key } });
    if (result.status === 200 || result.status === 201) {
      delete button.dataset.key;
      renderAnswer(result.body);
    } else if (result.status === 503) {
      showBanner(result.body && result.body.message);
    } else {
      $('answer').classList.remove('hidden');
      $('answer').replaceChildren(el('p', { class: 'warnings', id: 'match-error' }, (result.body && result.body.message) || ('HTTP ' + result.status)));
      delete button.dataset.key;
    }
  } finally {
    button.disabled = false;
  }
}

async function doReserve(decisionID, minutes, key) {
  const result = await api('/console/api/reservations', { method: 'POST', body: JSON.stringify({ decision_id: decisionID, hold_minutes: minutes }), headers: { 'Idempotency-Key': key } });
  if (result.status === 200 || result.status === 201) renderHold(result.body);
  else showResult('hold-result', (result.body && (result.body.message + (result.body.units ? ': ' + result.body.units.map((u) => u.din + ' ' + u.reason).join('; ') : ''))) || 'HTTP ' + result.status, false);
}

async function doRelease(reservationID) {
  const result = await api('/console/api/reservations/' + reservationID + '/release', { method: 'POST', body: '{}' });
  showResult('release-result', result.status === 200 ? 'Released.' : ((result.body && result.body.message) || 'HTTP ' + result.status), result.status === 200);
}

async function doIssue(reservationID, key) {
  const result = await api('/console/api/reservations/' + reservationID + '/issue', { method: 'POST', body: '{}', headers: { 'Idempotency-Key': key } });
  if (result.status === 200 || result.status === 201) {
    showResult('issue-result', 'Issued ' + result.body.issued.length + ' unit(s): ' + result.body.issued.map((d) => d.din + ' → ' + d.consignee_name).join('; '), true);
  } else {
    showResult('issue-result', (result.body && (result.body.message + (result.body.units ? ': ' + result.body.units.map((u) => u.din + ' ' + u.reason).join('; ') : ''))) || 'HTTP ' + result.status, false);
  }
}

// ---- orders, batch, stock at risk, trace --------------------------------------------------------
function fill(tableID, rows, empty) {
  const body = $(tableID).querySelector('tbody');
  body.replaceChildren();
  for (const cells of rows) {
    const tr = el('tr');
    cells.forEach((c, i) => tr.appendChild(el(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row' } : {}, c)));
    body.appendChild(tr);
  }
  if (!rows.length) { const tr = el('tr'); tr.appendChild(el('td', { colspan: '5' }, empty)); body.appendChild(tr); }
}
const when = (t) => (t ? t.replace('T', ' ').replace(':00Z', '').replace('Z', '') : '—');

async function loadOrders() {
  const r = await api('/console/api/orders');
  if (r.status !== 200) { showBanner(r.body && r.body.message); return; }
  fill('pending', r.body.pending.map((o) => [o.order_id, o.hospital, o.quantity + ' ' + o.component + ' ' + o.group + (o.requirements.length ? ' ' + o.requirements.join(',') : ''),
    o.urgency + (o.immediate ? ' (matched at once)' : ''), when(o.needed_by)]), 'no pending orders');
  const run = r.body.last_run;
  $('run-summary').textContent = run ? 'Run ' + run.run_id + ' finished ' + when(run.finished_at) + ' UTC by ' + run.operator + ': ' + run.shipments.length + ' shipment(s), ' + run.short.length + ' order(s) not filled.' : 'No batch run yet.';
  fill('dispatch', run ? run.shipments.map((s) => [s.number, s.centre + (s.stale_centre ? ' (stale)' : ''), s.hospital, s.units.length + ' (' + s.orders.join(', ') + ')', s.eta_minutes + (s.needed_by_met === false ? ' late' : '')]) : [], 'none');
  fill('short', run ? run.short.map((o) => [o.order_id, o.urgency, o.allocated + ' of ' + o.quantity, o.reason || o.status]) : [], 'none');
}

async function loadRisk() {
  const r = await api('/console/api/wastage');
  if (r.status !== 200) { showBanner(r.body && r.body.message); return; }
  fill('risk', r.body.rows.map((w) => [w.centre + ' ' + w.component + ' ' + w.group, w.stock + ' (' + w.short_dated + ' short-dated)', w.at_risk, w.daily_demand,
    w.days_of_supply === null ? 'no recent demand' : w.days_of_supply]), 'nothing at risk');
  fill('transfers', r.body.transfers.map((t) => [t.from, t.to, t.units + ' ' + t.group + ' ' + t.component, t.reason]), 'none suggested');
}

async function doTrace(event) {
  event.preventDefault();
  const q = new URLSearchParams({ din: $('t-din').value.trim() });
  if ($('t-code').value.trim()) q.set('product_code', $('t-code').value.trim().toUpperCase());
  const r = await api('/console/api/trace?' + q.toString());
  const table = $('timeline');
  table.classList.remove('hidden');
  if (r.status !== 200) {
    $('timeline-caption').textContent = (r.body && r.body.message) || 'HTTP ' + r.status;
    table.querySelector('tbody').replaceChildren();
    if (r.status === 503) showBanner(r.body && r.body.message);
    return;
  }
  $('timeline-caption').textContent = r.body.found ? 'History of ' + r.body.din + (r.body.product_code ? ' ' + r.body.product_code : ' (' + r.body.product_codes.join(', ') + ')') : 'Nothing recorded about ' + r.body.din;
  fill('timeline', r.body.timeline.map((l) => [when(l.at), l.unit || '', l.text, l.by || '']), 'no events');
  $('where-now').classList.remove('hidden');
  fill('where-now', r.body.where_now.map((w) => [w.unit + (w.component ? ' ' + w.component : ''), w.where, w.centre || '',
    w.consignee ? w.consignee + (w.address ? ', ' + w.address : '') : '', w.fate || '']), 'nothing recorded');
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
