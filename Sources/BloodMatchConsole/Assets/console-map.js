// BloodMatch console: the map, the centres and hospitals tables, and the overview they show.
'use strict';

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

