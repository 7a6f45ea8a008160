// Browser test of anvil's dashboard (/ui): Debian's chromium, headless, driven by playwright-core.
//   npm ci && ANVIL_BIN=/abs/path/anvil node dashboard.test.mjs [--readme]
// Starts the real server (`anvil --port 0 --durability memory`, test mode: the virtual clock makes
// the 5 s samples without sleeping), fills it through the v3 API, and checks what the page shows:
// load, queue list and chart, post through the form, peek, reserved list, clear, push attempts,
// and, on a second server started with `--token secret`, the token form; last, both servers stop
// on SIGTERM with exit code 0 (so that LeakSanitizer reports, with the ASan build).
// Prints "ok   name" / "FAIL name: reason" per check and, as the last line,
// "RESULT passed=N failed=M"; exit code 0 only when M == 0.
// Screenshots go to tests/ui/artifacts/ (or $ANVIL_UI_ARTIFACTS); --readme also writes
// docs/images/dashboard.png (the overview after ten minutes of virtual traffic, 1280x800).
// Chromium: $CHROMIUM or /usr/bin/chromium.
// ANVIL_TEST_BACKEND=postgres://... (an empty database): the servers run on the PostgreSQL back
// end (`--backend URL`) and the PostgreSQL variant runs: no server-side queue list (the page
// asks for a project), no chart, no reserved list, no virtual clock. Those checks print
// "skip name: reason" (not counted); screenshots get a "pg-" prefix.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

// Everything here talks to loopback: keep proxies from the environment out of the way.
for (const name of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy']) {
  delete process.env[name];
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const ANVIL_BIN = process.env.ANVIL_BIN || path.join(REPO, 'build', 'anvil');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ANVIL_UI_ARTIFACTS || path.join(HERE, 'artifacts');
const README_MODE = process.argv.includes('--readme');
const README_IMAGE = path.join(REPO, 'docs', 'images', 'dashboard.png');
const PG_BACKEND = process.env.ANVIL_TEST_BACKEND || '';
const PG = PG_BACKEND !== '';
const SHOT_PREFIX = PG ? 'pg-' : '';

const GLOBAL_TIMEOUT_MS = 60000;
const READY_TIMEOUT_MS = 10000;
const WAIT_MS = 6000; /* the page refreshes every 2 s: anything it should show shows by then */
const SAMPLE_INTERVAL_S = 5;
const VIEWPORT = { width: 1280, height: 800 };
const TOKEN = 'secret';
const NARROW_TOKEN = 'narrow'; /* the token server's second token: project delta only */

const started = Date.now();
const servers = [];
const tempDirs = [];
let browser = null;
let subscriberServer = null;
let passed = 0;
let failed = 0;
let finishing = false;

// ---- results ----

function pass(name) {
  passed++;
  console.log('ok   ' + name);
}

// A check that does not apply here: printed, not counted.
function skip(name, reason) {
  console.log('skip ' + name + ': ' + reason);
}

function fail(name, reason) {
  failed++;
  const text = reason && reason.message ? reason.message : String(reason);
  console.log('FAIL ' + name + ': ' + text.replace(/\s*\n\s*/g, ' | '));
}

// Runs one named check; a throw is its failure. Returns whether it passed.
async function check(name, fn) {
  try {
    await fn();
    pass(name);
    return true;
  } catch (e) {
    fail(name, e);
    return false;
  }
}

function assert(condition, what) {
  if (!condition) throw new Error(what);
}

function assertEqual(actual, expected, what) {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

// Polls fn until it returns a truthy value; throws with `what` (and the last value or error)
// after timeoutMs.
async function waitUntil(fn, what, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) throw new Error(`${what} (waited ${timeoutMs} ms; last: ${JSON.stringify(last)})`);
    await sleep(100);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- clean-up and the result line ----

function killServers() {
  for (const server of servers) {
    if (server.exitCode === null && server.signalCode === null) {
      try {
        server.kill('SIGKILL');
      } catch (e) {
        /* already gone */
      }
    }
  }
}

function removeTempDirs() {
  for (const dir of tempDirs.splice(0)) {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function finish() {
  if (finishing) return;
  finishing = true;
  clearTimeout(globalTimer);
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), sleep(3000)]);
  }
  if (subscriberServer) subscriberServer.close();
  killServers();
  removeTempDirs();
  if (failed > 0) {
    for (const server of servers) {
      const tail = server.log.split('\n').filter(Boolean).slice(-15);
      if (tail.length) console.log(`# last lines of ${server.label}'s log:`);
      for (const line of tail) console.log('#   ' + line);
    }
  }
  console.log('# run time ' + ((Date.now() - started) / 1000).toFixed(1) + ' s');
  console.log(`RESULT passed=${passed} failed=${failed}`);
  process.exit(failed === 0 ? 0 : 1);
}

process.on('exit', () => {
  killServers();
  removeTempDirs();
});
process.on('uncaughtException', (e) => {
  fail('uncaught exception', (e && e.stack) || e);
  finish();
});
process.on('unhandledRejection', (e) => {
  fail('unhandled rejection', (e && e.stack) || e);
  finish();
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    fail('interrupted', 'received ' + signal);
    finish();
  });
}
const globalTimer = setTimeout(() => {
  fail('global timeout', `the run took more than ${GLOBAL_TIMEOUT_MS / 1000} s`);
  finish();
}, GLOBAL_TIMEOUT_MS);

// ---- the anvil server ----

// Starts `anvil --port 0 --durability memory [extraArgs]` in a fresh directory (with
// `--backend $ANVIL_TEST_BACKEND` when set: then the data dir and durability go unused);
// resolves with {url, process} once it printed "anvil ready http://127.0.0.1:PORT".
function startAnvil(label, extraArgs = []) {
  return new Promise((resolve, reject) => {
    if (!fs.existsSync(ANVIL_BIN)) {
      reject(new Error(`anvil binary not found at ${ANVIL_BIN} (set ANVIL_BIN)`));
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'anvil-ui-'));
    tempDirs.push(dir);
    const args = ['--port', '0', '--durability', 'memory', '--data-dir', path.join(dir, 'data'),
      ...(PG ? ['--backend', PG_BACKEND] : []), ...extraArgs];
    const child = spawn(ANVIL_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.label = label;
    child.log = '';
    servers.push(child);
    let settled = false;
    const settle = (error, url) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve({ url, process: child });
    };
    const timer = setTimeout(() => settle(new Error(`${label} not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    const onOutput = (chunk) => {
      child.log += chunk.toString();
      const match = /anvil ready (http:\/\/127\.0\.0\.1:\d+)/.exec(child.log);
      if (match) settle(null, match[1]);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.on('error', (e) => settle(e));
    child.on('exit', (code, signal) => settle(new Error(`${label} exited (${code ?? signal}) before it was ready: ${child.log.trim()}`)));
  });
}

// One JSON call to a server; resolves with {status, json}.
async function call(base, method, urlPath, body, token = 'any') {
  const headers = { Authorization: 'OAuth ' + token };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(base + urlPath, init);
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (e) {
    /* left null */
  }
  return { status: response.status, json, text };
}

// A call that must succeed (2xx); resolves with the JSON body.
async function callOk(base, method, urlPath, body, token) {
  const r = await call(base, method, urlPath, body, token);
  assert(r.status >= 200 && r.status < 300, `${method} ${urlPath}: HTTP ${r.status} ${r.text}`);
  return r.json;
}

const queuePath = (project, queue) => `/3/projects/${encodeURIComponent(project)}/queues/${encodeURIComponent(queue)}`;

// ---- traffic: what the overview is checked against ----

// Four queues in two projects; each virtual 5 s step posts some messages to each, takes some
// back with reserve+delete, and advances the frozen clock so the server samples. `ready`
// tracks what each queue should hold afterwards.
const TRAFFIC_QUEUES = [
  { project: 'alpha', name: 'orders', ready: 0 },
  { project: 'alpha', name: 'emails', ready: 0 },
  { project: 'beta', name: 'jobs', ready: 0 },
  { project: 'beta', name: 'thumbnails', ready: 0 },
];

async function makeTraffic(base, steps) {
  for (let step = 0; step < steps; step++) {
    for (const [index, queue] of TRAFFIC_QUEUES.entries()) {
      // a smooth, different wave per queue: a chart with some shape
      const posts = Math.max(1, Math.round(5 + 4 * Math.sin(step / 6 + index * 0.7) + index * 2));
      const messages = Array.from({ length: posts }, (_, i) => ({ body: `${queue.name} #${step}.${i}` }));
      await callOk(base, 'POST', queuePath(queue.project, queue.name) + '/messages', { messages });
      queue.ready += posts;
      const takes = Math.min(queue.ready, Math.max(0, Math.round(posts * (0.75 + 0.2 * Math.cos(step / 5 + index)))));
      if (takes > 0) {
        const taken = await callOk(base, 'POST', queuePath(queue.project, queue.name) + '/reservations', { n: takes, delete: true });
        queue.ready -= taken.messages.length;
      }
    }
    await callOk(base, 'POST', '/admin/clock/advance', { seconds: SAMPLE_INTERVAL_S });
  }
}

// ---- the page ----

// A page in a fresh browser context (its own localStorage) that records console errors and
// uncaught page errors; `ignore` filters the console errors a check expects (e.g. a 401).
async function openPage(ignore = () => false) {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.consoleErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !ignore(message.text())) page.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => page.consoleErrors.push('page error: ' + error.message));
  return page;
}

async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, SHOT_PREFIX + name + '.png'), fullPage: true });
}

const textOf = (page, selector) => page.locator(selector).first().textContent({ timeout: 1000 });

// The rows of a table as arrays of cell texts.
function tableRows(page, selector) {
  return page.locator(selector + ' tbody tr').evaluateAll((rows) => rows.map((row) => Array.from(row.cells, (cell) => cell.textContent.trim())));
}

// Points of the chart lines under `selector` (polylines), the longest first.
function chartLinePoints(page, selector) {
  return page.locator(selector + ' svg.chart polyline').evaluateAll((lines) =>
    lines.map((line) => line.getAttribute('points').trim().split(/\s+/).length).sort((a, b) => b - a));
}

// ---- the checks ----

/* /ui redirects to /ui/, which loads with its title and a server line naming the version and
 * the back end, and nothing in the console. */
async function pageLoads(page, base, version, backend) {
  const response = await page.goto(base + '/ui');
  assertEqual(response.status(), 200, 'status of /ui (after the redirect)');
  assert(page.url().endsWith('/ui/'), '/ui redirects to /ui/, the page is at ' + page.url());
  assertEqual(await page.title(), 'anvil', 'title');
  await waitUntil(async () => {
    const line = await textOf(page, '#server-line');
    return line.includes(String(version)) && line.includes(backend) ? line : false;
  }, `the server line shows version ${version} and ${backend}`);
  assertEqual(page.consoleErrors, [], 'console errors');
}

async function checkOverview(page, base) {
  const overview = await callOk(base, 'GET', '/ui/api/overview');
  const version = overview.server && overview.server.version;

  await check('/ui loads: title, server line with the version and sqlite, no console errors',
    () => pageLoads(page, base, version, 'sqlite'));

  await check('overview lists the queues of both projects with their ready counts', async () => {
    await waitUntil(async () => {
      const rows = await tableRows(page, '#queue-table');
      for (const queue of TRAFFIC_QUEUES) {
        const row = rows.find((cells) => cells[0] === queue.project && cells[1] === queue.name);
        if (!row) return false;
        if (row[3] !== queue.ready.toLocaleString('en-US')) return false;
      }
      return rows.length === TRAFFIC_QUEUES.length;
    }, 'rows ' + TRAFFIC_QUEUES.map((q) => `${q.project}/${q.name} ready ${q.ready}`).join(', '));
  });

  await check('overview chart has lines of more than one point after the samples', async () => {
    const points = await waitUntil(async () => {
      const counts = await chartLinePoints(page, '#overview-charts');
      return counts.length >= 2 && counts[0] > 1 ? counts : false;
    }, 'polylines with more than one point in the overview charts');
    const sparklines = await page.locator('#queue-table svg.sparkline polyline').count();
    assert(sparklines >= 1, 'the queue table has depth sparklines, found ' + sparklines);
    assert(points[0] > 1, 'points ' + points);
  });

  await check('overview filter box narrows the table', async () => {
    await page.fill('.filter', 'beta/jo');
    const rows = await waitUntil(async () => {
      const r = await tableRows(page, '#queue-table');
      return r.length === 1 ? r : false;
    }, 'one row for "beta/jo"');
    assertEqual(rows[0].slice(0, 2), ['beta', 'jobs'], 'the row left');
    await page.fill('.filter', '');
    await page.locator('.filter').blur();
    await waitUntil(async () => (await tableRows(page, '#queue-table')).length === TRAFFIC_QUEUES.length, 'all rows back');
  });

  await screenshot(page, 'overview');
}

// `queue` ({project, name, ready}) is listed on the overview page open in `page`.
async function checkQueuePage(page, base, queue) {
  const peekBodies = async () => (await tableRows(page, '#peek-list')).map((cells) => cells[1]);

  await check('row click opens the queue page with its settings', async () => {
    await page.locator(`#queue-table tr[data-project="${queue.project}"][data-queue="${queue.name}"] td.col-project`).click();
    await waitUntil(() => page.url().endsWith(`#/p/${queue.project}/q/${queue.name}`), 'the hash route of the queue');
    await waitUntil(async () => (await textOf(page, '#queue-settings dd[data-field="type"]')) === 'pull', 'type pull in the settings');
    assertEqual(await textOf(page, '#queue-settings dd[data-field="size"]'), queue.ready.toLocaleString('en-US'), 'size');
    assertEqual(await textOf(page, 'h1'), queue.name, 'heading');
  });

  await check('posting through the form shows the message in the peek list', async () => {
    await callOk(base, 'DELETE', queuePath(queue.project, queue.name) + '/messages', {});
    await page.click('#peek-button');
    await waitUntil(async () => (await peekBodies()).length === 0 || (await textOf(page, '#peek-list')).includes('No ready messages'), 'an empty peek list after the API clear');
    await page.fill('#post-body', 'hello from the form');
    await page.click('#post-form button[type="submit"]');
    await waitUntil(async () => (await peekBodies()).includes('hello from the form'), 'the posted body in the peek list');
    assertEqual(await textOf(page, '#post-status'), 'Posted 1 message.', 'post status');
  });

  await check('a body with HTML shows as text (no element created from it)', async () => {
    const hostile = '<img src=x onerror="window.__anvilXss=1"><b>bold</b>';
    await page.fill('#post-body', hostile);
    await page.click('#post-form button[type="submit"]');
    await waitUntil(async () => (await peekBodies()).includes(hostile), 'the HTML body as text in the peek list');
    assertEqual(await page.locator('#view img, #view b').count(), 0, 'img/b elements in the page');
    assertEqual(await page.evaluate(() => window.__anvilXss === undefined), true, 'the onerror handler never ran');
  });

  await check('one-per-line posts each line as a message', async () => {
    await page.fill('#post-body', 'line one\nline two\n\nline three');
    await page.check('#post-per-line');
    await page.click('#post-form button[type="submit"]');
    await waitUntil(async () => {
      const bodies = await peekBodies();
      return ['line one', 'line two', 'line three'].every((b) => bodies.includes(b));
    }, 'three messages from three lines');
    assertEqual(await textOf(page, '#post-status'), 'Posted 3 messages.', 'post status');
    await page.uncheck('#post-per-line');
  });

  if (PG) {
    await check('PostgreSQL: the Reserved section shows the note instead of a list', async () => {
      const reserved = await callOk(base, 'POST', queuePath(queue.project, queue.name) + '/reservations', { n: 1, timeout: 60 });
      assertEqual(reserved.messages.length, 1, 'messages reserved');
      const dash = await callOk(base, 'GET', `/ui/api/projects/${queue.project}/queues/${queue.name}`);
      assertEqual(dash.reserved, null, 'reserved in /ui/api');
      assert(typeof dash.reserved_note === 'string' && dash.reserved_note, 'a reserved_note in /ui/api: ' + JSON.stringify(dash));
      await waitUntil(async () => (await textOf(page, '#reserved-list')) === dash.reserved_note, `the note "${dash.reserved_note}"`);
      assertEqual(await page.locator('#reserved-list table').count(), 0, 'tables in the Reserved section');
    });

    await check('PostgreSQL: the queue page says there is no history for the charts', async () => {
      await waitUntil(async () => (await page.locator('#view').textContent()).includes('This back end keeps no history for the charts.'),
        'the no-history note on the queue page');
      assertEqual(await page.locator('#view svg.chart').count(), 0, 'charts on the queue page');
    });
  } else {
    await check('a message reserved through the API shows in the Reserved list', async () => {
      const reserved = await callOk(base, 'POST', queuePath(queue.project, queue.name) + '/reservations', { n: 1, timeout: 60 });
      assertEqual(reserved.messages.length, 1, 'messages reserved');
      const { id, reservation_id: reservationId } = reserved.messages[0];
      const row = await waitUntil(async () => {
        const rows = await tableRows(page, '#reserved-list');
        return rows.find((cells) => cells[0] === id);
      }, `message ${id} in the Reserved list`);
      assertEqual(row[1], reservationId, 'reservation id shown');
      assertEqual(row[2], '1', 'reserved count shown');
      assertEqual(row[4], 'hello from the form', 'body shown');
    });
  }

  await screenshot(page, 'queue');

  await check('Clear (confirm accepted) empties the queue', async () => {
    let dialogText = null;
    page.once('dialog', (dialog) => {
      dialogText = dialog.message();
      dialog.accept();
    });
    await page.click('#clear-button');
    await waitUntil(() => dialogText, 'a confirm() dialog');
    assert(dialogText.includes(queue.name), 'the dialog names the queue: ' + dialogText);
    await waitUntil(async () => (await textOf(page, '#peek-list')).includes('No ready messages'), 'an empty peek list');
    await waitUntil(async () => (await textOf(page, '#queue-settings dd[data-field="size"]')) === '0', 'size 0 in the settings');
    const info = await callOk(base, 'GET', queuePath(queue.project, queue.name));
    assertEqual(info.queue.size, 0, 'size through the API');
  });
}

// A subscriber on loopback that answers 200 and remembers the bodies it got.
function startSubscriber() {
  return new Promise((resolve) => {
    const received = [];
    subscriberServer = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => { body += chunk; });
      request.on('end', () => {
        received.push(body);
        response.writeHead(200, { 'Content-Type': 'text/plain' });
        response.end('ok');
      });
    });
    subscriberServer.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${subscriberServer.address().port}/hook`, received }));
  });
}

async function checkPushQueue(page, base) {
  await check('push queue page shows the subscriber and a 200 push attempt for s1', async () => {
    const subscriber = await startSubscriber();
    await callOk(base, 'PUT', queuePath('alpha', 'pushed'), {
      queue: { type: 'unicast', push: { subscribers: [{ name: 's1', url: subscriber.url }], retries: 3, retries_delay: 60 } },
    });
    await callOk(base, 'POST', queuePath('alpha', 'pushed') + '/messages', { messages: [{ body: 'pushed body' }] });
    await waitUntil(() => subscriber.received.includes('pushed body'), 'the subscriber got the message');
    await page.goto(base + '/ui/#/p/alpha/q/pushed');
    await waitUntil(async () => {
      const rows = await tableRows(page, '#push-section table.subscribers');
      return rows.length === 1 && rows[0][0] === 's1' && rows[0][1] === subscriber.url;
    }, 'subscriber s1 with its URL');
    const attempt = await waitUntil(async () => {
      const rows = await tableRows(page, '#push-section table.push-attempts');
      return rows.find((cells) => cells[2] === 's1' && cells[4] === '200');
    }, 'a push attempt with status 200 for s1');
    assertEqual(attempt[3], '1', 'first try');
    assertEqual(await textOf(page, '#queue-settings dd[data-field="type"]'), 'unicast', 'type');
  });
  await screenshot(page, 'push-queue');
}

async function checkTokenMode() {
  let server;
  await check('token server starts (--token secret)', async () => {
    server = await startAnvil('token server', ['--token', TOKEN, '--token', NARROW_TOKEN + ':delta']);
    await callOk(server.url, 'POST', queuePath('gamma', 'secured') + '/messages', { messages: [{ body: 'x' }, { body: 'y' }] }, TOKEN);
    if (PG) await callOk(server.url, 'POST', queuePath('delta', 'inbox') + '/messages', { messages: [{ body: 'z' }] }, TOKEN);
  });
  if (!server) return;
  // the 401s and 403s these checks provoke are logged by chromium as failed loads: expected
  const page = await openPage((text) => /status of 40[13]/.test(text));

  await check('token mode: the page asks for a token', async () => {
    await page.goto(server.url + '/ui/');
    await page.locator('#token-panel').waitFor({ state: 'visible', timeout: WAIT_MS });
    assertEqual(await textOf(page, '#token-title'), 'This server needs a token', 'token form title');
  });

  await check('token mode: a wrong token shows the error', async () => {
    await page.fill('#token-input', 'wrong');
    await page.click('#token-form button[type="submit"]');
    await page.locator('#error-banner').waitFor({ state: 'visible', timeout: WAIT_MS });
    const banner = await textOf(page, '#error-text');
    assert(banner.includes('401'), 'the banner names the 401: ' + banner);
    await page.locator('#token-panel').waitFor({ state: 'visible', timeout: WAIT_MS });
    assertEqual(await textOf(page, '#token-title'), 'This token was refused', 'token form title');
    assertEqual(await page.evaluate(() => localStorage.getItem('anvil.token')), 'wrong', 'the token kept in localStorage');
  });

  await check('token mode: the right token shows the queues', async () => {
    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type="submit"]');
    if (PG) await enterProject(page, 'gamma'); /* no server-side list: name the project */
    await waitUntil(async () => {
      const rows = await tableRows(page, '#queue-table');
      return rows.some((cells) => cells[0] === 'gamma' && cells[1] === 'secured' && cells[3] === '2');
    }, 'gamma/secured with 2 ready');
    assert(await page.locator('#token-panel').isHidden(), 'the token form is closed');
    assert(await page.locator('#error-banner').isHidden(), 'the error banner is gone');
    assertEqual(page.consoleErrors, [], 'console errors other than the 401s');
  });
  await screenshot(page, 'token');

  await check('token mode: a token for other projects sees neither their queues nor the server chart', async () => {
    await page.click('#token-button');
    await page.fill('#token-input', NARROW_TOKEN);
    await page.click('#token-form button[type="submit"]');
    await page.locator('#overview-charts .chart-note').waitFor({ state: 'visible', timeout: WAIT_MS });
    await waitUntil(async () => (await textOf(page, '#server-line')).includes("this token's projects"),
      'the server line says whose counts it shows');
    const line = await textOf(page, '#server-line');
    if (PG) {
      // no per-queue depths in the server to count this token's share from: shown as unknown
      assert(line.includes('– messages') && line.includes('– queues'), 'server line: ' + line);
      // the project box still names gamma (kept in localStorage): the listing is refused
      await page.locator('#error-banner').waitFor({ state: 'visible', timeout: WAIT_MS });
      const banner = await textOf(page, '#error-text');
      assert(banner.startsWith('This token cannot see project gamma'), 'banner: ' + banner);
    } else {
      assert(line.includes('0 messages') && line.includes('0 queues'), 'server line: ' + line);
    }
    const rows = await tableRows(page, '#queue-table');
    assert(!rows.some((cells) => cells[0] === 'gamma'), 'gamma is not listed: ' + JSON.stringify(rows));
  });

  if (PG) {
    await check('PostgreSQL token mode: a refused project does not keep the rows of the one listed before', async () => {
      await enterProject(page, 'delta');
      await waitForProjectRows(page, [{ project: 'delta', name: 'inbox', ready: 1 }]);
      assert(await page.locator('#error-banner').isHidden(), 'the 403 banner for gamma is gone');
      await enterProject(page, 'gamma');
      await page.locator('#error-banner').waitFor({ state: 'visible', timeout: WAIT_MS });
      const banner = await textOf(page, '#error-text');
      assert(banner.startsWith('This token cannot see project gamma'), 'banner: ' + banner);
      // the refresh that put up the banner has drawn the table already
      assertEqual(await tableRows(page, '#queue-table'), [], 'rows under project gamma');
      assertEqual(await textOf(page, '#view .card-head .count'), '', 'queue count under project gamma');
    });
  }

  await check('token mode: a token without the project gets "cannot see project"', async () => {
    await page.goto(server.url + '/ui/#/p/gamma/q/secured');
    await page.locator('#error-banner').waitFor({ state: 'visible', timeout: WAIT_MS });
    const banner = await textOf(page, '#error-text');
    assert(banner.startsWith('This token cannot see project gamma'), 'banner: ' + banner);
    assertEqual(page.consoleErrors, [], 'console errors other than the 401s and 403s');
  });
}

// The last check: every server still running gets SIGTERM and must exit with 0 within 5 s.
// Under ASan this is what lets LeakSanitizer report (it exits non-zero on a leak); the
// SIGKILL in finish() is only for runs that end early.
async function checkCleanStop() {
  await check('servers stop cleanly on SIGTERM (exit code 0; under ASan: no leak report)', async () => {
    if (browser) {
      await Promise.race([browser.close().catch(() => {}), sleep(3000)]);
      browser = null;
    }
    const outcomes = await Promise.all(servers.filter((s) => s.exitCode === null && s.signalCode === null).map((server) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(`${server.label}: did not exit within 5 s`), 5000);
        server.once('exit', (code, signal) => {
          clearTimeout(timer);
          resolve(code === 0 ? null : `${server.label}: exit ${code ?? signal}; ${server.log.split('\n').filter(Boolean).slice(-5).join(' | ')}`);
        });
        server.kill('SIGTERM');
      })));
    const bad = outcomes.filter(Boolean);
    assert(bad.length === 0, bad.join('; '));
  });
}

// ---- the PostgreSQL variant: no queue list in the server, the page asks for a project ----

// Queues made through the v3 API (posting creates them); `ready` is what each holds.
const PG_QUEUES = [
  { project: 'alpha', name: 'orders', ready: 3 },
  { project: 'alpha', name: 'emails', ready: 5 },
  { project: 'beta', name: 'jobs', ready: 2 },
];
const PG_PROJECTS = ['alpha', 'beta', 'gamma', 'delta']; /* every project the variant touches */

// The database should be empty; queues an earlier run left in these projects are deleted so
// that the listings hold only what this run made.
async function removeLeftQueues(base) {
  for (const project of PG_PROJECTS) {
    const listing = await callOk(base, 'GET', `/3/projects/${project}/queues?per_page=100`, undefined, TOKEN);
    for (const q of listing.queues || []) await callOk(base, 'DELETE', queuePath(project, q.name), undefined, TOKEN);
  }
}

async function fillPg(base) {
  for (const queue of PG_QUEUES) {
    const messages = Array.from({ length: queue.ready }, (_, i) => ({ body: `${queue.name} #${i}` }));
    await callOk(base, 'POST', queuePath(queue.project, queue.name) + '/messages', { messages });
  }
}

// Types a project into the overview's project box and submits it.
async function enterProject(page, project) {
  await page.locator('.project-box input').waitFor({ state: 'visible', timeout: WAIT_MS });
  await page.fill('.project-box input', project);
  await page.click('.project-box button[type="submit"]');
}

// Waits until the overview's table lists exactly `queues` ({project, name, ready}) as pull
// queues with their sizes.
async function waitForProjectRows(page, queues) {
  const want = queues.map((q) => [q.project, q.name, 'pull', q.ready.toLocaleString('en-US')]).sort();
  return waitUntil(async () => {
    const rows = (await tableRows(page, '#queue-table')).map((cells) => cells.slice(0, 4)).sort();
    return JSON.stringify(rows) === JSON.stringify(want) ? rows : false;
  }, 'rows ' + JSON.stringify(want));
}

async function checkOverviewPg(page, base) {
  const overview = await callOk(base, 'GET', '/ui/api/overview');
  const version = overview.server && overview.server.version;

  await check('PostgreSQL: /ui loads: title, server line with the version and postgresql, no console errors', async () => {
    assertEqual(overview.queues, null, 'queues in /ui/api/overview');
    await pageLoads(page, base, version, 'postgresql');
  });

  await check('PostgreSQL: the overview shows the project box and no filter', async () => {
    await page.locator('.project-box').waitFor({ state: 'visible', timeout: WAIT_MS });
    const text = await textOf(page, '.project-box');
    assert(text.includes('name a project to list its queues'), 'project box text: ' + text);
    assert(await page.locator('.filter').isHidden(), 'the filter box is hidden');
    assertEqual(await tableRows(page, '#queue-table'), [], 'rows before a project is named');
  });

  skip('overview chart has lines of more than one point after the samples',
    'the PostgreSQL back end counts no events and keeps no depths: series values are null');
  await check('PostgreSQL: the overview says there is no history instead of drawing empty charts', async () => {
    const series = overview.series || {};
    for (const name of ['posts_per_s', 'deletes_per_s', 'ready', 'delayed', 'reserved']) {
      assert((series[name] || []).every((v) => v === null), `series.${name} all null: ${JSON.stringify(series[name])}`);
    }
    await waitUntil(async () => (await textOf(page, '#overview-charts .chart-note')) === 'This back end keeps no history for the charts.',
      'the no-history note in the overview');
    assertEqual(await page.locator('#overview-charts svg.chart').count(), 0, 'charts in the overview');
  });
  skip('overview filter box narrows the table', 'no server-side queue list on PostgreSQL (the box is hidden, checked above)');

  await check('PostgreSQL: entering a project lists its queues with their sizes', async () => {
    await enterProject(page, 'alpha');
    await waitForProjectRows(page, PG_QUEUES.filter((q) => q.project === 'alpha'));
    assertEqual(await page.evaluate(() => localStorage.getItem('anvil.project')), 'alpha', 'the project kept in localStorage');
    await enterProject(page, 'beta');
    await waitForProjectRows(page, PG_QUEUES.filter((q) => q.project === 'beta'));
    await enterProject(page, 'alpha');
    await waitForProjectRows(page, PG_QUEUES.filter((q) => q.project === 'alpha'));
  });

  await screenshot(page, 'overview');
}

async function mainPg() {
  let anvil;
  await check('PostgreSQL: server starts on ' + PG_BACKEND.replace(/(\/\/[^:@/]*):[^@/]*@/, '$1:***@'), async () => {
    anvil = await startAnvil('anvil');
    await removeLeftQueues(anvil.url);
  });
  if (!anvil) return;

  await check('PostgreSQL: the clock cannot be frozen (400)', async () => {
    const r = await call(anvil.url, 'POST', '/admin/clock/freeze');
    assertEqual(r.status, 400, 'status of POST /admin/clock/freeze');
  });

  await check('browser starts', async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });
  if (!browser) return;

  await fillPg(anvil.url);
  const page = await openPage();
  await checkOverviewPg(page, anvil.url);
  await checkQueuePage(page, anvil.url, PG_QUEUES[0]);
  await checkPushQueue(page, anvil.url);

  // PostgreSQL counts projects, queues and messages every 5 s (the sweep), not at each call:
  // the server line started at the counts of an empty database and catches up within 5 s.
  await check('PostgreSQL: the server line\'s counts catch up with the queues made (counted every 5 s)', async () => {
    await page.goto(anvil.url + '/ui/');
    await waitUntil(async () => {
      let queues = 0;
      let messages = 0;
      for (const project of PG_PROJECTS) {
        const listing = await callOk(anvil.url, 'GET', `/3/projects/${project}/queues?per_page=100`);
        for (const q of listing.queues || []) {
          queues++;
          messages += (await callOk(anvil.url, 'GET', queuePath(project, q.name))).queue.size;
        }
      }
      const line = await textOf(page, '#server-line');
      const want = [`${messages.toLocaleString('en-US')} messages`, `${queues.toLocaleString('en-US')} queues`];
      return want.every((part) => line.includes(part)) || `want ${want.join(', ')}; the line says: ${line}`;
    }, 'the server line counts what the API lists', 8000);
  });
  await check('no console errors on the main server', async () => assertEqual(page.consoleErrors, [], 'console errors'));
  await page.context().close();

  await checkTokenMode();
  await checkCleanStop();
}

// ---- main ----

async function main() {
  if (PG) {
    if (README_MODE) throw new Error('--readme needs the embedded back end (its chart); unset ANVIL_TEST_BACKEND');
    await mainPg();
    return;
  }
  let anvil;
  await check('server starts and the clock freezes', async () => {
    anvil = await startAnvil('anvil');
    await callOk(anvil.url, 'POST', '/admin/clock/freeze');
  });
  if (!anvil) return;

  await check('browser starts', async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  });
  if (!browser) return;

  // normal runs: a few samples; --readme: ten minutes of them, for a chart worth a picture
  await makeTraffic(anvil.url, README_MODE ? 118 : 4);

  const page = await openPage();
  await checkOverview(page, anvil.url);
  if (README_MODE) {
    fs.mkdirSync(path.dirname(README_IMAGE), { recursive: true });
    await page.screenshot({ path: README_IMAGE });
    console.log('# wrote ' + path.relative(REPO, README_IMAGE));
  }
  await checkQueuePage(page, anvil.url, TRAFFIC_QUEUES[0]);
  await checkPushQueue(page, anvil.url);
  await check('no console errors on the main server', async () => assertEqual(page.consoleErrors, [], 'console errors'));
  await page.context().close();

  await checkTokenMode();
  await checkCleanStop();
}

main().then(finish, (e) => {
  fail('main', (e && e.stack) || e);
  finish();
});
