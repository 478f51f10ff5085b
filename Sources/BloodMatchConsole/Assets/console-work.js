// BloodMatch console: match, hold, release and issue; orders and batch, stock at risk, trace.
'use strict';

// ---- match, hold, issue ------------------------------------------------------------------------
function requirementLabel(code) {
  const antigen = { FYA: 'Fy(a)', FYB: 'Fy(b)', JKA: 'Jk(a)', JKB: 'Jk(b)' };
  if (code.endsWith('_NEG')) {
    const a = code.slice(0, -4);
    return (antigen[a] || (a.length <= 2 ? a : a.replace(/_/g, ' ').toLowerCase())) + ' negative';
  }
  return code.replace(/_/g, '-').toLowerCase();
}

// The requirement checkboxes, one per code the engine knows (from the session).
function buildRequirements(codes) {
  const box = $('m-requirements');
  for (const code of codes) {
    const label = el('label');
    const input = el('input', { type: 'checkbox', name: 'requirement', value: code });
    label.appendChild(input);
    label.appendChild(document.createTextNode(' ' + requirementLabel(code)));
    box.appendChild(label);
  }
}

function matchBody() {
  const recipient = { abo: $('m-abo').value, rhd: $('m-rhd').value, sex: $('m-sex').value };
  if ($('m-age').value !== '') recipient.age = Number($('m-age').value);
  const context = Array.from(document.querySelectorAll('input[name="context"]:checked')).map((i) => i.value);
  if (context.length) recipient.context = context;
  const requirements = Array.from(document.querySelectorAll('input[name="requirement"]:checked')).map((i) => i.value);
  const body = {
    hospital_id: $('m-hospital').value, component: $('m-component').value, recipient,
    quantity: Number($('m-quantity').value), requirements, urgency: $('m-urgency').value,
  };
  // datetime-local is the dispatcher's local time; the API takes an instant with its zone.
  if ($('m-needed-by').value) body.needed_by = new Date($('m-needed-by').value).toISOString();
  if ($('m-max-age').value !== '') body.max_unit_age_days = Number($('m-max-age').value);
  return body;
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
      for (const v of [u.order, u.din, u.product_code + (u.attributes.length ? ' ' + u.attributes.join(', ').toLowerCase() : ''), u.group, u.centre_id + (u.stale_centre ? ' (stale)' : ''), u.eta_minutes + (u.late ? ' late' : ''),
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

