/* anvil dashboard — api/ui/app.js
 * Everything the dashboard does in the browser: hash routing (#/ the overview,
 * #/p/{project}/q/{queue} one queue), the calls to the IronMQ v3 API and to the dashboard's
 * /ui/api/*, the token kept in localStorage, the SVG charts, and the 2 s refresh (paused while
 * the tab is hidden). Plain ES2020, no framework, no build step.
 * Names, bodies, URLs and error texts come from the server and are untrusted: they reach the
 * page only through createTextNode, textContent and DOM properties, never through innerHTML. */
'use strict';

const TOKEN_KEY = 'anvil.token';
const PROJECT_KEY = 'anvil.project';
const REFRESH_MS = 2000;
const HEADER_REFRESH_EVERY = 5; /* on the queue page, the server line every 5th refresh */
const CHART_WINDOW_MS = 10 * 60 * 1000;
const QUEUE_CHART_WIDTH = 380; /* the queue page's charts share two thirds of the page */
const PEEK_MAX = 100;
const POST_BATCH_MAX = 100;
const BODY_PREVIEW_CHARS = 160;
const SVG_NS = 'http://www.w3.org/2000/svg';

/* ---------- DOM helpers: the only way this file builds elements ---------- */

/* h('td', {class: 'num'}, child, ...): an element with properties set as DOM properties
 * (textContent, href, title, value, ...), 'on*' keys as listeners, 'class' as className and
 * 'dataset' merged into data-*. Children: nodes, or strings/numbers turned into text nodes. */
function h(tag, props, ...children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  appendChildren(node, children);
  return node;
}

function applyProps(node, props) {
  if (!props) return;
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key.startsWith('aria') || key === 'role') node.setAttribute(key.replace(/^aria/, 'aria-').toLowerCase(), String(value));
    else node[key] = value;
  }
}

function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/* An SVG element; attributes are numbers or our own strings (coordinates, class names). */
function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  appendChildren(node, children);
  return node;
}

const byId = (id) => document.getElementById(id);

/* ---------- formatting ---------- */

function formatCount(n) {
  return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US') : '–';
}

function formatRate(r) {
  if (typeof r !== 'number' || !Number.isFinite(r)) return '–';
  if (r === 0) return '0';
  return r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString('en-US');
}

/* Short axis labels: 950, 1.2k, 3.4M. */
function formatCompact(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + 'M';
  if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function formatSeconds(s) {
  if (typeof s !== 'number') return '–';
  const units = [[86400, 'd'], [3600, 'h'], [60, 'min']];
  for (const [size, name] of units) {
    if (s >= size && s % size === 0) return `${formatCount(s)} s (${s / size} ${name})`;
  }
  return `${formatCount(s)} s`;
}

function formatClock(ms) {
  if (typeof ms !== 'number') return '–';
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

/* One line of at most BODY_PREVIEW_CHARS characters: whitespace runs become one space. */
function previewBody(body) {
  const flat = String(body ?? '').replace(/\s+/g, ' ');
  return flat.length > BODY_PREVIEW_CHARS ? flat.slice(0, BODY_PREVIEW_CHARS) + '…' : flat;
}

/* ---------- token ---------- */

function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch (e) {
    return '';
  }
}

function writeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch (e) {
    showError('This browser does not let the page keep the token (localStorage unavailable).');
  }
  updateTokenButton();
}

function readSetting(key) {
  try {
    return localStorage.getItem(key) || '';
  } catch (e) {
    return '';
  }
}

function writeSetting(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch (e) {
    /* the setting only lives as long as the page then */
  }
}

/* ---------- API ---------- */

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const enc = encodeURIComponent;
const v3QueuesPath = (project) => `/3/projects/${enc(project)}/queues`;
const v3QueuePath = (project, queue) => `${v3QueuesPath(project)}/${enc(queue)}`;
const dashQueuePath = (project, queue) => `/ui/api/projects/${enc(project)}/queues/${enc(queue)}`;

/* One call to the server: JSON in, JSON out. Resolves with the parsed body; rejects with an
 * ApiError carrying the HTTP status (0 when the server could not be reached) and the server's
 * {"msg"} text. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = readToken();
  if (token) headers.Authorization = 'OAuth ' + token;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'The server cannot be reached.');
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    const msg = data && typeof data.msg === 'string' ? data.msg : `HTTP ${response.status} ${response.statusText}`;
    throw new ApiError(response.status, msg);
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError(response.status, `${method} ${path}: the answer is not JSON.`);
  }
  return data;
}

/* ---------- error banner and token panel ---------- */

/* Who put the current text in the banner: 'refresh' (the 2 s loop: its next success clears
 * it) or 'action' (a click or a form: stays until dismissed or the next action/route). */
let errorSource = null;

function showError(text, source = 'action') {
  errorSource = source;
  byId('error-text').textContent = text;
  byId('error-banner').hidden = false;
}

/* Hides the banner; with a source, only when that source put it there. */
function clearError(source) {
  if (source && source !== errorSource) return;
  errorSource = null;
  byId('error-banner').hidden = true;
  byId('error-text').textContent = '';
}

/* What an API error means for the person looking at the page. `project` names the project the
 * call was about, when there is one. 401 opens the token form. */
function reportApiError(error, project, source = 'action') {
  if (!(error instanceof ApiError)) {
    showError(`Unexpected error: ${error && error.message ? error.message : error}`, source);
    return;
  }
  if (error.status === 401) {
    openTokenPanel(readToken() ? 'This token was refused' : 'This server needs a token', true);
    showError(`${error.message} (HTTP 401): enter a token the server knows.`, source);
  } else if (error.status === 403) {
    showError(project ? `This token cannot see project ${project}. (${error.message})`
                      : `This token cannot see this: ${error.message}`, source);
  } else {
    showError(error.status ? `${error.message} (HTTP ${error.status})` : error.message, source);
  }
}

/* Whether the token panel is open because the server asked for a token (a 401), rather than
 * because someone clicked the token button: a later successful call closes it then. */
let tokenPanelForced = false;

function openTokenPanel(title, forced) {
  byId('token-title').textContent = title;
  tokenPanelForced = Boolean(forced);
  if (!byId('token-panel').hidden) return; /* already open: keep what is being typed */
  byId('token-panel').hidden = false;
  byId('token-input').value = '';
  byId('token-input').focus();
}

function closeTokenPanel() {
  tokenPanelForced = false;
  byId('token-panel').hidden = true;
}

function closeTokenPanelIfForced() {
  if (tokenPanelForced) closeTokenPanel();
}

function updateTokenButton() {
  byId('token-button').textContent = readToken() ? 'Token ✓' : 'Token';
}

function wireTokenPanel() {
  byId('token-button').addEventListener('click', () => {
    if (byId('token-panel').hidden) openTokenPanel('API token', false);
    else closeTokenPanel();
  });
  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    writeToken(byId('token-input').value.trim());
    closeTokenPanel();
    clearError();
    renderRoute();
  });
  byId('token-forget').addEventListener('click', () => {
    writeToken('');
    closeTokenPanel();
    clearError();
    renderRoute();
  });
  byId('token-cancel').addEventListener('click', closeTokenPanel);
  byId('error-close').addEventListener('click', clearError);
}

/* ---------- header: the server line ---------- */

function renderServerLine(server) {
  const line = byId('server-line');
  if (!server) {
    line.replaceChildren();
    return;
  }
  const storageOk = server.storage === 'ok';
  const part = (label, value, cls) => h('span', { class: 'server-part' + (cls ? ' ' + cls : '') },
    label ? h('span', { class: 'muted' }, label + ' ') : null, value);
  const parts = [
    part('', `v${server.version}`, 'server-version'),
    part('', server.backend, 'server-backend'),
    part('storage', storageOk ? 'ok' : String(server.storage), storageOk ? 'state-ok' : 'state-bad'),
    part('', `${formatCount(server.messages)} messages`),
    part('', `${formatCount(server.queues)} queues`),
    part('', server.auth === 'token' ? 'token auth' : 'dev mode (no tokens)'),
  ];
  if (server.scope === 'projects') parts.push(part('', "this token's projects", 'state-note'));
  if (server.test_mode) parts.push(part('', 'test mode', 'state-note'));
  line.replaceChildren(...parts);
}

async function refreshServerLine() {
  try {
    const overview = await api('GET', '/ui/api/overview');
    renderServerLine(overview.server);
  } catch (e) {
    /* the queue page reports its own errors; the server line just keeps its last state */
  }
}

/* ---------- refresh loop ---------- */

/* Runs `tick` now and then every REFRESH_MS after the previous one finished; pauses while the
 * tab is hidden. refreshNow() runs it at once (or right after the one in progress). tick's own
 * errors are its business: an escaped one goes to the banner and the loop goes on. */
function startRefresher(tick) {
  let timer = null;
  let running = false;
  let again = false;
  let stopped = false;

  async function run() {
    clearTimeout(timer);
    timer = null;
    if (stopped || document.hidden) return;
    running = true;
    try {
      await tick();
    } catch (e) {
      reportApiError(e, null, 'refresh');
    }
    running = false;
    if (stopped) return;
    if (again) {
      again = false;
      run();
    } else if (!document.hidden) {
      timer = setTimeout(run, REFRESH_MS);
    }
  }

  function onVisibilityChange() {
    if (!document.hidden && !running && !stopped) run();
  }

  document.addEventListener('visibilitychange', onVisibilityChange);
  run();
  return {
    refreshNow() {
      if (running) again = true;
      else run();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibilityChange);
    },
  };
}

/* ---------- charts (inline SVG) ---------- */

/* The axis top: the smallest 1/2/2.5/5 × 10^k at or above value (for counts, 1/2/5 and at
 * least 2, so that the middle grid line is a whole number too). */
function niceCeiling(value, isCount) {
  if (!(value > 0)) return isCount ? 2 : 1;
  if (isCount && value <= 2) return 2;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of isCount ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

/* Runs of consecutive non-null points, as [[t, v], ...] lists (a null breaks the line). */
function lineSegments(times, values, startMs) {
  const segments = [];
  let current = [];
  for (let i = 0; i < times.length; i++) {
    const v = values ? values[i] : null;
    if (times[i] < startMs || typeof v !== 'number' || !Number.isFinite(v)) {
      if (current.length) segments.push(current);
      current = [];
    } else {
      current.push([times[i], v]);
    }
  }
  if (current.length) segments.push(current);
  return segments;
}

function lastNumber(values) {
  for (let i = (values || []).length - 1; i >= 0; i--) {
    if (typeof values[i] === 'number') return values[i];
  }
  return null;
}

/* A time chart of the last 10 minutes: lines = [{label, values, className, format}] aligned
 * with times (ms, oldest first); isCount when the values are message counts. `width` is the
 * drawing's own width: close to the width it gets on the page, so the labels keep their size.
 * Returns a <figure> with the SVG and a legend holding each line's latest value. */
function timeChart({ title, times, lines, isCount = false, width = 560 }) {
  const height = 170;
  const pad = { left: 40, right: 12, top: 10, bottom: 22 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const safeTimes = Array.isArray(times) ? times : [];
  const endMs = safeTimes.length ? safeTimes[safeTimes.length - 1] : 0;
  const startMs = endMs - CHART_WINDOW_MS;

  const segmentsByLine = lines.map((line) => lineSegments(safeTimes, line.values, startMs));
  let max = 0;
  for (const segments of segmentsByLine) {
    for (const segment of segments) for (const [, v] of segment) max = Math.max(max, v);
  }
  const top = niceCeiling(max, isCount);
  const x = (t) => pad.left + ((t - startMs) / CHART_WINDOW_MS) * plotW;
  const y = (v) => pad.top + plotH - (v / top) * plotH;

  const svg = svgEl('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': title });
  for (const fraction of [0, 0.5, 1]) {
    const gy = y(top * fraction);
    svg.appendChild(svgEl('line', { x1: pad.left, x2: width - pad.right, y1: gy, y2: gy, class: 'grid' }));
    svg.appendChild(svgEl('text', { x: pad.left - 6, y: gy + 4, class: 'axis-label', 'text-anchor': 'end' },
      formatCompact(top * fraction)));
  }
  const ticks = [[0, '−10 min', 'start'], [0.5, '−5 min', 'middle'], [1, 'now', 'end']];
  for (const [fraction, label, anchor] of ticks) {
    svg.appendChild(svgEl('text', { x: pad.left + fraction * plotW, y: height - 6, class: 'axis-label', 'text-anchor': anchor }, label));
  }

  const hasPoints = segmentsByLine.some((segments) => segments.length > 0);
  if (!hasPoints) {
    svg.appendChild(svgEl('text', { x: pad.left + plotW / 2, y: pad.top + plotH / 2, class: 'chart-empty', 'text-anchor': 'middle' },
      'no samples yet'));
  }
  lines.forEach((line, index) => {
    for (const segment of segmentsByLine[index]) {
      if (segment.length === 1) {
        const [[t, v]] = segment;
        svg.appendChild(svgEl('circle', { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2, class: 'series ' + line.className }));
      } else {
        const points = segment.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
        svg.appendChild(svgEl('polyline', { points, class: 'series ' + line.className }));
      }
    }
  });

  const legend = h('figcaption', { class: 'legend' },
    h('span', { class: 'chart-title' }, title),
    lines.map((line) => h('span', { class: 'legend-item' },
      h('span', { class: 'swatch ' + line.className }),
      line.label + ' ',
      h('span', { class: 'legend-value' }, (line.format || formatRate)(lastNumber(line.values))))));
  return h('figure', { class: 'chart-figure' }, legend, svg);
}

/* A small depth line for a table cell; values aligned with the overview's series.t. */
function sparkline(values) {
  const width = 90;
  const height = 20;
  const svg = svgEl('svg', { viewBox: `0 0 ${width} ${height}`, class: 'sparkline', 'aria-hidden': 'true' });
  const list = Array.isArray(values) ? values : [];
  let max = 0;
  for (const v of list) if (typeof v === 'number' && v > max) max = v;
  const top = max > 0 ? max : 1;
  const step = list.length > 1 ? width / (list.length - 1) : 0;
  let current = [];
  const flush = () => {
    if (current.length > 1) svg.appendChild(svgEl('polyline', { points: current.join(' '), class: 'spark-line' }));
    current = [];
  };
  list.forEach((v, i) => {
    if (typeof v !== 'number') return flush();
    current.push(`${(i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
  });
  flush();
  return svg;
}

/* ---------- small building blocks ---------- */

function numCell(n) {
  return h('td', { class: 'num' }, formatCount(n));
}

function rateCell(r) {
  return h('td', { class: 'num' }, formatRate(r));
}

function typeBadge(type) {
  const known = ['pull', 'unicast', 'multicast'].includes(type);
  return h('span', { class: 'badge badge-' + (known ? type : 'other') }, type || '?');
}

/* A table with a header row; `rows` are <tr>s; `empty` is shown as one row when there are none. */
function table({ columns, rows, empty, className }) {
  const head = h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : '', scope: 'col' }, c.label)));
  const body = h('tbody', null, rows.length ? rows
    : h('tr', { class: 'empty-row' }, h('td', { colSpan: columns.length, class: 'muted' }, empty)));
  return h('table', { class: 'data ' + (className || '') }, h('thead', null, head), body);
}

function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', null, title) : null, children);
}

function queueHash(project, queue) {
  return `#/p/${enc(project)}/q/${enc(queue)}`;
}

/* ---------- overview (#/) ---------- */

function overviewView(main) {
  const chartsBox = h('div', { class: 'charts' });
  const filterInput = h('input', { type: 'search', class: 'filter', placeholder: 'Filter by project or queue', ariaLabel: 'Filter queues' });
  const countText = h('span', { class: 'muted count' });
  const tableBox = h('div', { class: 'table-box', id: 'queue-table' });
  const projectBox = h('div', { class: 'project-box', hidden: true });
  main.replaceChildren(
    h('section', { class: 'card', id: 'overview-charts' }, h('h2', null, 'Last 10 minutes'), chartsBox),
    h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', null, 'Queues'), countText, filterInput),
      projectBox, tableBox),
  );

  let latest = null;
  let projectMode = null; /* built when the server gives no queue list (PostgreSQL back end) */
  filterInput.addEventListener('input', () => {
    if (latest && latest.queues) drawQueueTable(latest);
  });

  /* noHistory: the back end keeps no history (PostgreSQL: `queues` is null and every value
   * in `series` is null for good): a note, not two empty charts waiting for samples. */
  function drawCharts(series, noHistory) {
    if (noHistory) {
      chartsBox.replaceChildren(h('p', { class: 'muted chart-note' },
        'This back end keeps no history for the charts.'));
      return;
    }
    if (series === null) { /* a token limited to some projects: no server-wide activity */
      chartsBox.replaceChildren(h('p', { class: 'muted chart-note' },
        'Server-wide activity is shown to tokens for every project. Each queue\'s chart is on its page.'));
      return;
    }
    const s = series || {};
    const depth = (s.t || []).map((_, i) => {
      const parts = [s.ready, s.delayed, s.reserved].map((list) => (list ? list[i] : null));
      return parts.some((v) => typeof v === 'number') ? parts.reduce((sum, v) => sum + (v || 0), 0) : null;
    });
    chartsBox.replaceChildren(
      timeChart({
        title: 'Messages per second',
        times: s.t,
        lines: [
          { label: 'posts/s', values: s.posts_per_s, className: 'series-in' },
          { label: 'deletes/s', values: s.deletes_per_s, className: 'series-out' },
        ],
      }),
      timeChart({
        title: 'Depth',
        times: s.t,
        lines: [{ label: 'total', values: depth, className: 'series-depth', format: formatCount }],
        isCount: true,
      }),
    );
  }

  function drawQueueTable(overview) {
    const needle = filterInput.value.trim().toLowerCase();
    const matching = overview.queues.filter((q) => !needle
      || `${q.project}/${q.name} ${q.type}`.toLowerCase().includes(needle));
    const rows = matching.map((q) => {
      const hash = queueHash(q.project, q.name);
      return h('tr', { class: 'clickable', dataset: { project: q.project, queue: q.name }, onclick: () => { location.hash = hash; } },
        h('td', { class: 'col-project' }, q.project),
        h('td', { class: 'col-queue' }, h('a', { href: hash }, q.name)),
        h('td', null, typeBadge(q.type)),
        numCell(q.ready), numCell(q.delayed), numCell(q.reserved),
        rateCell(q.in_per_s), rateCell(q.out_per_s),
        h('td', { class: 'spark-cell' }, sparkline(q.depth)));
    });
    const more = overview.more_queues > 0 ? ` (and ${formatCount(overview.more_queues)} more not listed)` : '';
    countText.textContent = needle ? `${matching.length} of ${overview.queues.length}${more}`
                                   : `${overview.queues.length}${more}`;
    tableBox.replaceChildren(table({
      columns: [
        { label: 'Project' }, { label: 'Queue' }, { label: 'Type' },
        { label: 'Ready', num: true }, { label: 'Delayed', num: true }, { label: 'Reserved', num: true },
        { label: 'In/s', num: true }, { label: 'Out/s', num: true }, { label: 'Depth (10 min)' },
      ],
      rows,
      empty: needle ? 'No queue matches the filter.' : 'No queues yet. Post a message to create one.',
      className: 'queues',
    }));
  }

  const refresher = startRefresher(async () => {
    let overview;
    try {
      overview = await api('GET', '/ui/api/overview');
    } catch (e) {
      reportApiError(e, null, 'refresh');
      return;
    }
    clearError('refresh');
    closeTokenPanelIfForced();
    latest = overview;
    renderServerLine(overview.server);
    drawCharts(overview.series, overview.queues === null);
    if (Array.isArray(overview.queues)) {
      projectBox.hidden = true;
      filterInput.hidden = false;
      drawQueueTable(overview);
    } else {
      filterInput.hidden = true;
      if (!projectMode) projectMode = projectQueuesPanel(projectBox, tableBox, countText, () => refresher.refreshNow());
      projectBox.hidden = false;
      await projectMode.refresh();
    }
  });
  return refresher;
}

/* The overview without a server-side queue list (PostgreSQL back end): the queues of one
 * project, listed through the v3 API, each queue's size read with GET queue. */
function projectQueuesPanel(projectBox, tableBox, countText, refreshNow) {
  const input = h('input', { type: 'text', value: readSetting(PROJECT_KEY), placeholder: 'project id', ariaLabel: 'Project', spellcheck: false });
  const form = h('form', { class: 'inline-form', onsubmit: (event) => {
    event.preventDefault();
    writeSetting(PROJECT_KEY, input.value.trim());
    refreshNow();
  } }, h('label', null, 'Project ', input), h('button', { type: 'submit' }, 'List queues'));
  projectBox.replaceChildren(
    h('p', { class: 'muted' }, 'This back end keeps no queue list for the dashboard: name a project to list its queues.'),
    form);

  let shownProject = null; /* whose queues the table holds */

  function clearTable() {
    shownProject = null;
    countText.textContent = '';
    tableBox.replaceChildren();
  }

  async function refresh() {
    const project = input.value.trim();
    if (!project) {
      clearTable();
      return;
    }
    let listing;
    try {
      listing = await api('GET', `${v3QueuesPath(project)}?per_page=100`);
    } catch (e) {
      reportApiError(e, project, 'refresh');
      /* a failed refresh keeps the rows of the same project; another project's rows would
       * read as this one's (e.g. a 403 after switching from a project the token sees) */
      if (project !== shownProject) clearTable();
      return;
    }
    const names = (listing.queues || []).map((q) => q.name);
    const infos = await Promise.all(names.map((name) => api('GET', v3QueuePath(project, name))
      .then((r) => r.queue, () => ({ name }))));
    countText.textContent = String(names.length) + (names.length === 100 ? ' (first 100)' : '');
    const rows = infos.map((q) => {
      const hash = queueHash(project, q.name);
      return h('tr', { class: 'clickable', dataset: { project, queue: q.name }, onclick: () => { location.hash = hash; } },
        h('td', { class: 'col-project' }, project),
        h('td', { class: 'col-queue' }, h('a', { href: hash }, q.name)),
        h('td', null, q.type ? typeBadge(q.type) : '–'),
        numCell(q.size), numCell(q.total_messages));
    });
    shownProject = project;
    tableBox.replaceChildren(table({
      columns: [{ label: 'Project' }, { label: 'Queue' }, { label: 'Type' }, { label: 'Size', num: true }, { label: 'Total posted', num: true }],
      rows,
      empty: `Project ${project} has no queues.`,
      className: 'queues',
    }));
  }
  return { refresh };
}

/* ---------- queue page (#/p/{project}/q/{queue}) ---------- */

function queueView(main, project, queue) {
  const title = h('div', { class: 'page-title' },
    h('a', { href: '#/', class: 'crumb' }, 'Queues'), h('span', { class: 'crumb-sep' }, '/'),
    h('span', { class: 'crumb' }, project), h('span', { class: 'crumb-sep' }, '/'),
    h('h1', null, queue), h('span', { id: 'queue-type' }));
  const settingsList = h('dl', { class: 'settings', id: 'queue-settings' });
  const chartsBox = h('div', { class: 'charts' });

  const bodyInput = h('textarea', { id: 'post-body', rows: 4, placeholder: 'message body', spellcheck: false, ariaLabel: 'Message body' });
  const delayInput = h('input', { id: 'post-delay', type: 'number', min: 0, max: 604800, value: '0', ariaLabel: 'Delay in seconds' });
  const perLineInput = h('input', { id: 'post-per-line', type: 'checkbox' });
  const postStatus = h('span', { class: 'muted', id: 'post-status', ariaLive: 'polite' });
  const postForm = h('form', { id: 'post-form', class: 'post-form', onsubmit: onPost },
    bodyInput,
    h('div', { class: 'form-row' },
      h('label', null, 'Delay ', delayInput, ' s'),
      h('label', null, perLineInput, ' one message per line'),
      h('button', { type: 'submit', class: 'button-primary' }, 'Post'),
      postStatus));

  const peekBox = h('div', { id: 'peek-list', class: 'table-box' });
  const peekCount = h('span', { class: 'muted count' });
  const reservedBox = h('div', { id: 'reserved-list', class: 'table-box' });
  const pushBox = h('div', { id: 'push-section', hidden: true });

  main.replaceChildren(
    title,
    h('div', { class: 'grid-2' },
      card('Settings', settingsList),
      h('section', { class: 'card' }, h('h2', null, 'Last 10 minutes'), chartsBox)),
    pushBox,
    card('Post messages', postForm),
    h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', null, 'Peek'), peekCount,
        h('div', { class: 'actions' },
          h('button', { type: 'button', id: 'peek-button', onclick: () => peek() }, 'Peek'),
          h('button', { type: 'button', id: 'clear-button', class: 'button-danger', onclick: onClear }, 'Clear'))),
      peekBox),
    card('Reserved', reservedBox),
  );

  let tickCount = 0;
  const refresher = startRefresher(async () => {
    if (tickCount++ % HEADER_REFRESH_EVERY === 0) refreshServerLine();
    const [info, dash] = await Promise.allSettled([
      api('GET', v3QueuePath(project, queue)),
      api('GET', dashQueuePath(project, queue)),
    ]);
    if (info.status === 'rejected') {
      reportApiError(info.reason, project, 'refresh');
      if (info.reason.status === 404) showNotFound();
      return;
    }
    if (dash.status === 'rejected' && dash.reason.status !== 404) {
      reportApiError(dash.reason, project, 'refresh');
    } else {
      clearError('refresh');
      closeTokenPanelIfForced();
    }
    drawSettings(info.value.queue || {});
    drawDashboard(dash.status === 'fulfilled' ? dash.value : null, info.value.queue || {});
  });
  peek();

  function showNotFound() {
    settingsList.replaceChildren(h('p', { class: 'muted' }, `Queue ${queue} does not exist in project ${project} (any more).`));
  }

  function drawSettings(q) {
    byId('queue-type').replaceChildren(typeBadge(q.type));
    const row = (label, value, field) => [h('dt', null, label), h('dd', { dataset: { field } }, value)];
    const deadLetter = q.dead_letter && q.dead_letter.queue_name
      ? `→ ${q.dead_letter.queue_name} after ${formatCount(q.dead_letter.max_reservations)} reservations`
      : 'none';
    const items = [
      row('Type', q.type || '–', 'type'),
      row('Size', formatCount(q.size), 'size'),
      row('Total posted', formatCount(q.total_messages), 'total_messages'),
      row('Message timeout', formatSeconds(q.message_timeout), 'message_timeout'),
      row('Message expiration', formatSeconds(q.message_expiration), 'message_expiration'),
    ];
    if (q.push) {
      items.push(row('Push retries', formatCount(q.push.retries), 'retries'),
        row('Retries delay', formatSeconds(q.push.retries_delay), 'retries_delay'),
        row('Error queue', q.push.error_queue || 'none', 'error_queue'));
    } else {
      items.push(row('Dead letter', deadLetter, 'dead_letter'));
    }
    settingsList.replaceChildren(...items.flat());
  }

  function drawDashboard(dash, q) {
    const series = dash && dash.series;
    if (series) {
      chartsBox.replaceChildren(
        timeChart({
          title: 'Depth',
          times: series.t,
          lines: [{ label: 'depth', values: series.depth, className: 'series-depth', format: formatCount }],
          isCount: true,
          width: QUEUE_CHART_WIDTH,
        }),
        timeChart({
          title: 'Messages per second',
          width: QUEUE_CHART_WIDTH,
          times: series.t,
          lines: [
            { label: 'in/s', values: series.in_per_s, className: 'series-in' },
            { label: 'out/s', values: series.out_per_s, className: 'series-out' },
          ],
        }));
    } else {
      chartsBox.replaceChildren(h('p', { class: 'muted' }, dash ? 'This back end keeps no history for the charts.' : 'No history available.'));
    }
    drawReserved(dash);
    drawPush(dash, q);
  }

  function drawReserved(dash) {
    if (!dash) {
      reservedBox.replaceChildren(h('p', { class: 'muted' }, 'Not available.'));
      return;
    }
    if (!Array.isArray(dash.reserved)) {
      reservedBox.replaceChildren(h('p', { class: 'muted' }, dash.reserved_note || 'This back end cannot list reserved messages.'));
      return;
    }
    const rows = dash.reserved.map((m) => h('tr', { dataset: { id: m.id } },
      h('td', { class: 'mono' }, m.id),
      h('td', { class: 'mono' }, m.reservation_id),
      numCell(m.reserved_count),
      h('td', { class: 'num' }, formatClock(m.reserved_until_ms)),
      h('td', { class: 'body-preview', title: String(m.body ?? '') }, previewBody(m.body))));
    reservedBox.replaceChildren(table({
      columns: [{ label: 'Id' }, { label: 'Reservation' }, { label: 'Reserved', num: true }, { label: 'Until', num: true }, { label: 'Body' }],
      rows,
      empty: 'No reserved messages.',
      className: 'reserved',
    }));
  }

  function drawPush(dash, q) {
    const isPush = q.type === 'unicast' || q.type === 'multicast';
    pushBox.hidden = !isPush;
    if (!isPush) return;
    const subscribers = (q.push && q.push.subscribers) || [];
    const subscriberRows = subscribers.map((s) => h('tr', null,
      h('td', null, s.name), h('td', { class: 'mono url' }, s.url)));
    const attempts = (dash && Array.isArray(dash.push_attempts)) ? dash.push_attempts : [];
    const attemptRows = attempts.map((a) => h('tr', { dataset: { subscriber: a.subscriber ?? '', status: a.status ?? '' } },
      h('td', { class: 'num' }, formatClock(a.at_ms)),
      h('td', { class: 'mono' }, a.message_id),
      h('td', null, a.subscriber),
      numCell(a.try),
      h('td', { class: 'num col-status' }, a.status > 0 ? String(a.status) : '–'), /* -1: no answer */
      h('td', null, h('span', { class: 'badge result-' + (typeof a.result === 'string' ? a.result.replace(/[^a-z]/g, '') : 'other') }, a.result)),
      h('td', { class: 'num' }, typeof a.latency_ms === 'number' ? `${a.latency_ms.toFixed(1)} ms` : '–'),
      h('td', { class: 'error-text' }, a.error || '')));
    pushBox.replaceChildren(
      card('Subscribers', table({
        columns: [{ label: 'Name' }, { label: 'URL' }],
        rows: subscriberRows,
        empty: 'No subscribers.',
        className: 'subscribers',
      })),
      card('Recent push attempts', table({
        columns: [{ label: 'Time', num: true }, { label: 'Message' }, { label: 'Subscriber' }, { label: 'Try', num: true },
          { label: 'Status', num: true }, { label: 'Result' }, { label: 'Latency', num: true }, { label: 'Error' }],
        rows: attemptRows,
        empty: dash ? 'No push attempts yet.' : 'Not available.',
        className: 'push-attempts',
      })));
  }

  async function peek() {
    try {
      const result = await api('GET', `${v3QueuePath(project, queue)}/messages?n=${PEEK_MAX}`);
      const messages = Array.isArray(result.messages) ? result.messages : [];
      peekCount.textContent = messages.length === PEEK_MAX ? `first ${PEEK_MAX} ready` : `${messages.length} ready`;
      const rows = messages.map((m) => h('tr', { dataset: { id: m.id } },
        h('td', { class: 'mono' }, m.id),
        h('td', { class: 'body-preview', title: String(m.body ?? '') }, previewBody(m.body)),
        numCell(m.reserved_count)));
      peekBox.replaceChildren(table({
        columns: [{ label: 'Id' }, { label: 'Body' }, { label: 'Reserved count', num: true }],
        rows,
        empty: 'No ready messages.',
        className: 'peek',
      }));
    } catch (e) {
      reportApiError(e, project);
      if (e.status === 404) peekBox.replaceChildren(h('p', { class: 'muted' }, 'Queue not found.'));
    }
  }

  async function onPost(event) {
    event.preventDefault();
    const text = bodyInput.value;
    const delay = Number.parseInt(delayInput.value || '0', 10);
    if (!Number.isInteger(delay) || delay < 0 || delay > 604800) {
      showError('Delay must be a whole number of seconds from 0 to 604800.');
      return;
    }
    const bodies = perLineInput.checked ? text.split(/\r?\n/).filter((line) => line.trim() !== '') : [text];
    if (bodies.length === 0 || bodies.some((b) => b === '')) {
      showError('A message needs a body.');
      return;
    }
    postStatus.textContent = 'Posting…';
    let posted = 0;
    try {
      for (let i = 0; i < bodies.length; i += POST_BATCH_MAX) {
        const messages = bodies.slice(i, i + POST_BATCH_MAX).map((body) => ({ body, delay }));
        const result = await api('POST', `${v3QueuePath(project, queue)}/messages`, { messages });
        posted += Array.isArray(result.ids) ? result.ids.length : messages.length;
      }
      postStatus.textContent = posted === 1 ? 'Posted 1 message.' : `Posted ${formatCount(posted)} messages.`;
      bodyInput.value = '';
      clearError();
    } catch (e) {
      postStatus.textContent = posted ? `Posted ${formatCount(posted)} before an error.` : '';
      reportApiError(e, project);
    }
    await peek();
    refresher.refreshNow();
  }

  async function onClear() {
    if (!window.confirm(`Clear every message from queue ${queue} in project ${project}?`)) return;
    try {
      await api('DELETE', `${v3QueuePath(project, queue)}/messages`, {});
      postStatus.textContent = 'Queue cleared.';
      clearError();
    } catch (e) {
      reportApiError(e, project);
    }
    await peek();
    refresher.refreshNow();
  }

  return refresher;
}

/* ---------- routing ---------- */

let currentView = null;

function parseRoute(hash) {
  const match = /^#\/p\/([^/]+)\/q\/([^/]+)\/?$/.exec(hash);
  if (match) {
    try {
      return { name: 'queue', project: decodeURIComponent(match[1]), queue: decodeURIComponent(match[2]) };
    } catch (e) {
      /* a malformed escape: fall through to the overview */
    }
  }
  return { name: 'overview' };
}

function renderRoute() {
  if (currentView) currentView.stop();
  const main = byId('view');
  const route = parseRoute(location.hash);
  if (route.name === 'queue') {
    document.title = `${route.queue} · ${route.project} · anvil`;
    currentView = queueView(main, route.project, route.queue);
  } else {
    document.title = 'anvil';
    currentView = overviewView(main);
  }
  window.scrollTo(0, 0);
}

function start() {
  wireTokenPanel();
  updateTokenButton();
  window.addEventListener('hashchange', () => {
    clearError();
    renderRoute();
  });
  renderRoute();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
