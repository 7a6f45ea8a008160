'use strict';
// Real-client test: drives anvil with the official IronMQ Node client (npm iron_mq 0.9.3).
//   npm ci && ANVIL_BIN=/path/to/anvil node iron_mq.test.js
// Starts anvil on a free port with a fresh data directory, runs every call the client's
// Client offers, prints "ok   name" / "FAIL name: reason" per check and, as the last line,
// "RESULT passed=N failed=M". Exit code 0 only when M == 0.
//
// Client quirks this file works around (iron_mq 0.9.3 / iron_core 0.2.7):
// - create_queue, update_queue, update, clear, add/rm/rpl_subscribers, del_queue, del,
//   del_multiple and msg_release call `cb(cb(error, body))`: the callback runs twice, the
//   second time with the first call's return value as the error. Only the first call counts.
// - info, msg_get and queues parse the body themselves and hand the client only
//   body.queue / body.message / body.queues, so on an error status the server's {"msg"}
//   is lost and the error reads "Unknown error"; the status and text are checked with a
//   plain HTTP request as well. peek_n and msg_push_statuses (GET) report the raw body
//   text as the error message; the other calls report body.msg.
//
// Time: on the embedded back end the tests of delays, long-poll waits, reservation timeouts,
// expiration and push retries freeze anvil's clock and advance it through the test kit
// (POST /admin/clock/freeze | advance | unfreeze, docs/testing-with-anvil.md) instead of
// sleeping, so they can use the hosted service's own values (60 s timeouts, 30 s waits).
// On the PostgreSQL back end (ANVIL_TEST_BACKEND) the clock cannot be frozen: the same
// checks run in real time with short values, and the ones that need minutes are skipped.

const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

// The client only talks to loopback: keep proxies from the environment out of the way.
['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy'].forEach(function (k) {
  delete process.env[k];
});

const ironMq = require('iron_mq');
const { clockHelpers } = require('./clock');

const ANVIL_BIN = process.env.ANVIL_BIN || path.resolve(__dirname, '..', '..', '..', 'build', 'anvil');
const PROJECT = 'node-test';
const READY_TIMEOUT_MS = 10000;
const GLOBAL_TIMEOUT_MS = 60000;
const CALL_TIMEOUT_MS = 5000;

const started = Date.now();
let server = null;
let serverExited = false;
let serverLog = '';
let dataDir = null;
let passed = 0;
let failed = 0;
let finished = false;
let port = 0;

// ---- cleanup and the result line ----

function cleanup() {
  if (server && !serverExited) {
    try {
      server.kill('SIGKILL');
    } catch (e) {
      /* already gone */
    }
  }
  if (dataDir) {
    try {
      fs.rmSync(dataDir, { recursive: true, force: true });
    } catch (e) {
      /* best effort */
    }
    dataDir = null;
  }
}

// Kills the server, waits (at most 2 s) until it is gone, removes the data directory, prints
// the result line and exits. The 'exit' handler repeats the cleanup synchronously.
function finish() {
  if (finished) return;
  finished = true;
  clearTimeout(globalTimer);
  if (server && !serverExited) {
    const giveUp = setTimeout(report, 2000);
    server.once('exit', function () {
      clearTimeout(giveUp);
      report();
    });
    try {
      server.kill('SIGKILL');
    } catch (e) {
      clearTimeout(giveUp);
      report();
    }
  } else {
    report();
  }
}

let reported = false;
function report() {
  if (reported) return;
  reported = true;
  cleanup();
  if (failed > 0 && serverLog) {
    const tail = serverLog.split('\n').filter(Boolean).slice(-25);
    console.log('# last lines of the server log:');
    tail.forEach(function (l) {
      console.log('#   ' + l);
    });
  }
  console.log('# run time ' + ((Date.now() - started) / 1000).toFixed(1) + ' s');
  console.log('RESULT passed=' + passed + ' failed=' + failed);
  process.exit(failed === 0 ? 0 : 1);
}

function fail(name, reason) {
  failed++;
  console.log('FAIL ' + name + ': ' + String(reason).replace(/\s*\n\s*/g, ' | '));
}

process.on('exit', cleanup);
process.on('uncaughtException', function (e) {
  fail('uncaught exception', (e && e.stack) || e);
  finish();
});
process.on('unhandledRejection', function (e) {
  fail('unhandled rejection', (e && e.stack) || e);
  finish();
});
['SIGINT', 'SIGTERM', 'SIGHUP'].forEach(function (sig) {
  process.on(sig, function () {
    fail('interrupted', 'received ' + sig);
    finish();
  });
});
const globalTimer = setTimeout(function () {
  fail('global timeout', 'the run took more than ' + GLOBAL_TIMEOUT_MS / 1000 + ' s');
  finish();
}, GLOBAL_TIMEOUT_MS);

// ---- assertions ----

function check(cond, what) {
  if (!cond) throw new Error(what);
}

function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(what + ': expected ' + e + ', got ' + a);
}

function isId(v) {
  return typeof v === 'string' && /^[0-9]+$/.test(v);
}

function isRid(v) {
  return typeof v === 'string' && v.length > 0;
}

// The server's error text out of whatever the client made of it.
function errText(err) {
  const m = err && err.message !== undefined ? String(err.message) : String(err);
  try {
    const o = JSON.parse(m);
    if (o && typeof o.msg === 'string') return o.msg;
  } catch (e) {
    /* not JSON */
  }
  return m;
}

// ---- calling the client ----

// Runs fn(cb) and resolves with the FIRST callback's {err, body}; later invocations (the
// client's cb(cb(...)) quirk) are ignored. A missing callback is a hang; a throw, a crash.
function call(fn, timeoutMs) {
  const ms = timeoutMs || CALL_TIMEOUT_MS;
  return new Promise(function (resolve) {
    let done = false;
    const timer = setTimeout(function () {
      if (done) return;
      done = true;
      resolve({ err: new Error('no callback within ' + ms + ' ms (hang)'), hung: true });
    }, ms);
    try {
      fn(function (err, body) {
        if (done) return undefined;
        done = true;
        clearTimeout(timer);
        resolve({ err: err, body: body });
        return undefined;
      });
    } catch (e) {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve({ err: e, threw: true });
      }
    }
  });
}

// Expects success; returns the body.
async function ok(fn, timeoutMs) {
  const r = await call(fn, timeoutMs);
  if (r.threw) throw new Error('the client threw: ' + (r.err && r.err.stack));
  if (r.err) throw new Error('unexpected error: ' + errText(r.err));
  return r.body;
}

// Expects an error callback (not a hang, not a throw); returns the server's text.
async function fails(fn, timeoutMs) {
  const r = await call(fn, timeoutMs);
  if (r.hung) throw new Error(r.err.message);
  if (r.threw) throw new Error('the client threw instead of calling back: ' + (r.err && r.err.stack));
  if (!r.err) throw new Error('expected an error, got success: ' + JSON.stringify(r.body));
  check(r.err instanceof Error, 'the error is an Error object');
  return errText(r.err);
}

// A plain HTTP request, to see the status codes and texts the client does not surface.
function raw(method, p, body) {
  return request(method, '/3/projects/' + PROJECT + p, body);
}

function request(method, fullPath, body) {
  return new Promise(function (resolve, reject) {
    const data = body === undefined ? null : JSON.stringify(body);
    const headers = { Authorization: 'OAuth any' };
    if (data !== null) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(data);
    }
    const req = http.request(
      { host: '127.0.0.1', port: port, method: method, path: fullPath, headers: headers },
      function (res) {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', function (c) {
          text += c;
        });
        res.on('end', function () {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch (e) {
            /* left null */
          }
          resolve({ status: res.statusCode, type: res.headers['content-type'], json: json, text: text });
        });
      }
    );
    req.setTimeout(CALL_TIMEOUT_MS, function () {
      req.destroy(new Error('raw request timed out'));
    });
    req.on('error', reject);
    if (data !== null) req.write(data);
    req.end();
  });
}

async function expectStatus(method, p, body, status, msg) {
  const r = await raw(method, p, body);
  eq(r.status, status, method + ' ' + p + ' status');
  check(/^application\/json/.test(r.type || ''), method + ' ' + p + ' Content-Type is JSON, got ' + r.type);
  eq(r.json && r.json.msg, msg, method + ' ' + p + ' msg');
}

function sleep(ms) {
  return new Promise(function (resolve) {
    setTimeout(resolve, ms);
  });
}

// ---- the virtual clock (the test kit's /admin/clock routes) ----

let virtualClock = false; // set in main(): the embedded back end in test mode

async function clockCall(what, body) {
  const r = await request(what ? 'POST' : 'GET', '/admin/clock' + (what ? '/' + what : ''), body);
  eq(r.status, 200, 'clock ' + (what || 'reading') + ' status (' + r.text + ')');
  return r.json; // {"mode": "wall" | "frozen", "now_ms", "offset_ms"}
}

const { advance, frozen, reachServer } = clockHelpers(clockCall);

// A promise's state without waiting for it.
function watch(promise) {
  const w = { settled: false, promise: promise };
  promise.then(function () { w.settled = true; }, function () { w.settled = true; });
  return w;
}

// ---- the server ----

function startServer() {
  return new Promise(function (resolve, reject) {
    if (!fs.existsSync(ANVIL_BIN)) {
      reject(new Error('anvil binary not found at ' + ANVIL_BIN + ' (set ANVIL_BIN)'));
      return;
    }
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'anvil-node-'));
    // ANVIL_TEST_BACKEND=postgres://...: the same calls against the PostgreSQL back end
    const backend = process.env.ANVIL_TEST_BACKEND ? ['--backend', process.env.ANVIL_TEST_BACKEND] : [];
    server = childProcess.spawn(ANVIL_BIN, ['--port', '0', '--data-dir', dataDir].concat(backend), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let settled = false;
    const timer = setTimeout(function () {
      if (settled) return;
      settled = true;
      reject(new Error('no ready line within ' + READY_TIMEOUT_MS / 1000 + ' s'));
    }, READY_TIMEOUT_MS);
    server.stderr.setEncoding('utf8');
    server.stderr.on('data', function (c) {
      serverLog += c;
    });
    server.stdout.setEncoding('utf8');
    server.stdout.on('data', function (c) {
      out += c;
      const m = /^anvil ready http:\/\/127\.0\.0\.1:(\d+)\s*$/m.exec(out);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    server.on('error', function (e) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    server.on('exit', function (code, signal) {
      serverExited = true;
      serverLog += '[anvil exited: code ' + code + ', signal ' + signal + ']\n';
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error('anvil exited before it was ready (code ' + code + ', signal ' + signal + ')'));
    });
  });
}

// ---- the tests ----

const tests = [];
function test(name, fn) {
  tests.push({ name: name, fn: fn });
}

let client = null; // bound to 'nq-main'
function q(name) {
  return client.queue(name);
}
const S = {}; // state handed from test to test

test('create_queue with message_timeout, message_expiration and dead_letter', async function () {
  const body = await ok(function (cb) {
    client.create_queue(
      'nq-main',
      { message_timeout: 45, message_expiration: 3600, dead_letter: { queue_name: 'nq-dlq', max_reservations: 2 } },
      cb
    );
  });
  const qi = body && body.queue;
  check(qi, 'response has a queue object: ' + JSON.stringify(body));
  eq(qi.name, 'nq-main', 'name');
  eq(qi.project_id, PROJECT, 'project_id');
  check(typeof qi.id === 'string' && qi.id.length > 0, 'id is a non-empty string: ' + JSON.stringify(qi.id));
  eq(qi.message_timeout, 45, 'message_timeout');
  eq(qi.message_expiration, 3600, 'message_expiration');
  eq(qi.type, 'pull', 'type');
  eq(qi.dead_letter, { queue_name: 'nq-dlq', max_reservations: 2 }, 'dead_letter');
  check(!('size' in qi) && !('total_messages' in qi), 'create answers without size/total_messages');
  S.queueId = qi.id;
});

test('create_queue with an out-of-range message_timeout → error, no queue', async function () {
  const msg = await fails(function (cb) {
    client.create_queue('nq-bad', { message_timeout: 5 }, cb);
  });
  check(/message_timeout/.test(msg), 'error names message_timeout: ' + msg);
  await expectStatus('GET', '/queues/nq-bad', undefined, 404, 'Queue not found');
});

test('create_queue of a push queue → its push settings, with the defaults', async function () {
  const body = await ok(function (cb) {
    client.create_queue(
      'nq-push',
      { type: 'unicast', push: { subscribers: [{ name: 's1', url: 'http://127.0.0.1:9/', headers: { 'X-K': 'v' } }] } },
      cb
    );
  });
  const qi = body && body.queue;
  eq(qi.type, 'unicast', 'type');
  eq(qi.push, { subscribers: [{ name: 's1', url: 'http://127.0.0.1:9/', headers: { 'X-K': 'v' } }], retries: 3, retries_delay: 60 }, 'push');
});

test('add_subscribers, rpl_subscribers, rm_subscribers on a push queue', async function () {
  const pq = q('nq-push');
  const added = await ok(function (cb) {
    pq.add_subscribers({ name: 's2', url: 'https://hooks.example/s2' }, cb);
  });
  eq(added, { msg: 'Updated' }, 'add answer');
  let info = await ok(function (cb) { pq.info(cb); });
  eq(info.push.subscribers.map(function (s) { return s.name; }), ['s1', 's2'], 'after add');
  await ok(function (cb) {
    pq.rpl_subscribers([{ name: 's3', url: 'ironmq:///nq-other' }, { name: 's4', url: 'http://127.0.0.1:9/4' }], cb);
  });
  info = await ok(function (cb) { pq.info(cb); });
  eq(info.push.subscribers.map(function (s) { return s.name; }), ['s3', 's4'], 'after replace');
  await ok(function (cb) { pq.rm_subscribers({ name: 's3' }, cb); });
  info = await ok(function (cb) { pq.info(cb); });
  eq(info.push.subscribers, [{ name: 's4', url: 'http://127.0.0.1:9/4' }], 'after remove');
  const msg = await fails(function (cb) { pq.rm_subscribers({ name: 's4' }, cb); });
  check(/subscriber/.test(msg), 'the last subscriber stays: ' + msg);
});

test('post to a push queue → delivered; msg_push_statuses; del_msg_push_status acknowledges a 202', async function () {
  await ok(function (cb) { q('nq-push').del_queue(cb); }); // the listing tests expect it gone
  const got = [];
  const subscriber = http.createServer(function (req, res) {
    let body = '';
    req.on('data', function (c) { body += c; });
    req.on('end', function () {
      got.push({ headers: req.headers, body: body });
      res.writeHead(202);
      res.end();
    });
  });
  await new Promise(function (resolve) { subscriber.listen(0, '127.0.0.1', resolve); });
  const url = 'http://127.0.0.1:' + subscriber.address().port + '/hook';
  try {
    const pq = q('nq-pushed');
    await ok(function (cb) {
      client.create_queue('nq-pushed', { type: 'multicast', push: { subscribers: [{ name: 'w', url: url }] } }, cb);
    });
    const id = await ok(function (cb) { pq.post('to the subscriber', cb); });
    for (let i = 0; i < 250 && got.length === 0; i++) await new Promise(function (r) { setTimeout(r, 20); });
    eq(got.length, 1, 'the subscriber got one request');
    eq(got[0].body, 'to the subscriber', 'body');
    eq(got[0].headers['iron-message-id'], id, 'Iron-Message-Id');
    eq(got[0].headers['iron-subscriber-name'], 'w', 'Iron-Subscriber-Name');
    const statuses = await ok(function (cb) { pq.msg_push_statuses(id, cb); });
    const st = statuses && statuses.subscribers && statuses.subscribers[0];
    eq(st && [st.name, st.status, st.status_code, st.tries], ['w', 'reserved', 202, 1], 'push status');
    const del = await ok(function (cb) {
      pq.del_msg_push_status(id, got[0].headers['iron-reservation-id'], 'w', cb);
    });
    eq(del && del.msg, 'Deleted', 'acknowledged');
    const info = await ok(function (cb) { pq.info(cb); });
    eq(info.size, 0, 'delivered: size 0');
    await ok(function (cb) { pq.del_queue(cb); });
  } finally {
    subscriber.close();
  }
});

test('info returns the queue with counts', async function () {
  const qi = await ok(function (cb) {
    client.info(cb);
  });
  eq(qi.name, 'nq-main', 'name');
  eq(qi.id, S.queueId, 'id as at create');
  eq(qi.project_id, PROJECT, 'project_id');
  eq(qi.size, 0, 'size');
  eq(qi.total_messages, 0, 'total_messages');
  eq(qi.message_timeout, 45, 'message_timeout');
  eq(qi.message_expiration, 3600, 'message_expiration');
  eq(qi.type, 'pull', 'type');
  eq(qi.dead_letter, { queue_name: 'nq-dlq', max_reservations: 2 }, 'dead_letter');
});

test('info on a missing queue → error; server says 404 "Queue not found"', async function () {
  const msg = await fails(function (cb) {
    q('nq-missing').info(cb);
  });
  // the client drops the body on errors for info (see the header): any error text will do
  check(msg.length > 0, 'error has a text');
  await expectStatus('GET', '/queues/nq-missing', undefined, 404, 'Queue not found');
});

test('update_queue changes message_timeout and keeps the rest', async function () {
  const body = await ok(function (cb) {
    client.update_queue('nq-main', { message_timeout: 50 }, cb);
  });
  const qi = body && body.queue;
  check(qi, 'response has a queue object: ' + JSON.stringify(body));
  eq(qi.name, 'nq-main', 'name');
  eq(qi.message_timeout, 50, 'message_timeout');
  eq(qi.message_expiration, 3600, 'message_expiration unchanged');
  eq(qi.dead_letter, { queue_name: 'nq-dlq', max_reservations: 2 }, 'dead_letter unchanged');
  eq(qi.size, 0, 'size (update answers as Get Queue)');
});

test('update (queue-bound) changes message_expiration, info agrees', async function () {
  const body = await ok(function (cb) {
    client.update({ message_expiration: 7200 }, cb);
  });
  eq(body && body.queue && body.queue.message_expiration, 7200, 'message_expiration in the answer');
  const qi = await ok(function (cb) {
    client.info(cb);
  });
  eq(qi.message_expiration, 7200, 'message_expiration from info');
  eq(qi.message_timeout, 50, 'message_timeout from info');
});

test('update_queue on a missing queue → "Queue not found"', async function () {
  const msg = await fails(function (cb) {
    client.update_queue('nq-missing', { message_timeout: 60 }, cb);
  });
  eq(msg, 'Queue not found', 'error text');
});

test('queues: list with per_page, previous and prefix', async function () {
  for (const name of ['lst-c', 'lst-a', 'lst-b']) {
    await ok(function (cb) {
      client.create_queue(name, {}, cb);
    });
  }
  const names = function (list) {
    check(Array.isArray(list), 'list is an array: ' + JSON.stringify(list));
    return list.map(function (x) {
      return x.name;
    });
  };
  const page1 = await ok(function (cb) {
    client.queues({ prefix: 'lst-', per_page: 2 }, cb);
  });
  eq(names(page1), ['lst-a', 'lst-b'], 'first page');
  const page2 = await ok(function (cb) {
    client.queues({ prefix: 'lst-', per_page: 2, previous: 'lst-b' }, cb);
  });
  eq(names(page2), ['lst-c'], 'second page');
  const page3 = await ok(function (cb) {
    client.queues({ prefix: 'lst-', per_page: 2, previous: 'lst-c' }, cb);
  });
  eq(names(page3), [], 'past the end');
  const none = await ok(function (cb) {
    client.queues({ prefix: 'zzz' }, cb);
  });
  eq(names(none), [], 'unknown prefix');
  const all = names(
    await ok(function (cb) {
      client.queues({}, cb);
    })
  );
  eq(all, ['lst-a', 'lst-b', 'lst-c', 'nq-main'], 'all queues, lexicographic');
});

test('post one string → one id string', async function () {
  const id = await ok(function (cb) {
    client.post('hello one', cb);
  });
  check(isId(id), 'id is a string of digits: ' + JSON.stringify(id));
  S.id1 = id;
});

test('post an array → ids in request order', async function () {
  const ids = await ok(function (cb) {
    client.post(['m1', 'm2', { body: 'm3' }], cb);
  });
  check(Array.isArray(ids) && ids.length === 3, 'three ids: ' + JSON.stringify(ids));
  ids.forEach(function (id) {
    check(isId(id), 'id is a string of digits: ' + JSON.stringify(id));
  });
  check(new Set(ids.concat([S.id1])).size === 4, 'ids are distinct');
  S.ids = ids;
});

test('info counts the posted messages', async function () {
  const qi = await ok(function (cb) {
    client.info(cb);
  });
  eq(qi.size, 4, 'size');
  eq(qi.total_messages, 4, 'total_messages');
});

test('peek (no n) → the oldest message, unchanged', async function () {
  const m = await ok(function (cb) {
    client.peek({}, cb);
  });
  check(m && !Array.isArray(m), 'one message object: ' + JSON.stringify(m));
  eq(m.id, S.id1, 'id');
  eq(m.body, 'hello one', 'body');
  eq(m.reserved_count, 0, 'reserved_count');
  check(!m.reservation_id, 'no reservation_id on a peek');
});

test('peek_n (n) → messages in order, not reserved', async function () {
  const list = await ok(function (cb) {
    client.peek_n({ n: 10 }, cb);
  });
  check(Array.isArray(list), 'an array: ' + JSON.stringify(list));
  eq(
    list.map(function (m) {
      return [m.id, m.body, m.reserved_count];
    }),
    [[S.id1, 'hello one', 0], [S.ids[0], 'm1', 0], [S.ids[1], 'm2', 0], [S.ids[2], 'm3', 0]],
    'peeked messages'
  );
  const two = await ok(function (cb) {
    client.peek({ n: 2 }, cb);
  });
  eq(
    two.map(function (m) {
      return m.body;
    }),
    ['hello one', 'm1'],
    'peek with n: 2'
  );
});

test('msg_get → the message by id', async function () {
  const m = await ok(function (cb) {
    client.msg_get(S.ids[1], cb);
  });
  eq(m.id, S.ids[1], 'id');
  eq(m.body, 'm2', 'body');
  eq(m.reserved_count, 0, 'reserved_count');
});

test('msg_get of an unknown id → error; server says 404 "Message not found"', async function () {
  await fails(function (cb) {
    client.msg_get('123456789', cb);
  });
  await expectStatus('GET', '/queues/nq-main/messages/123456789', undefined, 404, 'Message not found');
});

test('reserve (no n) → one message with a reservation', async function () {
  const m = await ok(function (cb) {
    client.reserve({}, cb);
  });
  check(m && !Array.isArray(m), 'one message object: ' + JSON.stringify(m));
  eq(m.id, S.id1, 'oldest first');
  eq(m.body, 'hello one', 'body');
  eq(m.reserved_count, 1, 'reserved_count');
  check(isRid(m.reservation_id), 'reservation_id: ' + JSON.stringify(m.reservation_id));
  S.r1 = m;
});

test('get_n (n, timeout) → two messages, each reserved', async function () {
  const list = await ok(function (cb) {
    client.get_n({ n: 2, timeout: 30 }, cb);
  });
  check(Array.isArray(list) && list.length === 2, 'two messages: ' + JSON.stringify(list));
  eq(
    list.map(function (m) {
      return [m.id, m.body, m.reserved_count];
    }),
    [[S.ids[0], 'm1', 1], [S.ids[1], 'm2', 1]],
    'reserved messages'
  );
  check(isRid(list[0].reservation_id) && isRid(list[1].reservation_id), 'reservation ids');
  check(list[0].reservation_id !== list[1].reservation_id, 'distinct reservation ids');
  S.batch = list;
});

test('get (n: 1) → one message', async function () {
  const m = await ok(function (cb) {
    client.get({ n: 1 }, cb);
  });
  check(m && !Array.isArray(m), 'one message object: ' + JSON.stringify(m));
  eq([m.id, m.body, m.reserved_count], [S.ids[2], 'm3', 1], 'message');
  check(isRid(m.reservation_id), 'reservation_id');
  S.r3 = m;
});

test('reserve on an empty queue → nothing; peek shows no reserved messages', async function () {
  const m = await ok(function (cb) {
    client.reserve({ n: 1 }, cb);
  });
  eq(m, undefined, 'no message');
  const list = await ok(function (cb) {
    client.get_n({ n: 5 }, cb);
  });
  eq(list, [], 'get_n gives an empty list');
  const peeked = await ok(function (cb) {
    client.peek_n({ n: 5 }, cb);
  });
  eq(peeked, [], 'peek_n gives an empty list');
  const qi = await ok(function (cb) {
    client.info(cb);
  });
  eq(qi.size, 4, 'reserved messages still count in size');
});

test('msg_touch → new reservation id; the old one is refused', async function () {
  const body = await ok(function (cb) {
    client.msg_touch(S.r1.id, S.r1.reservation_id, { timeout: 60 }, cb);
  });
  eq(body && body.msg, 'Touched', 'msg');
  check(isRid(body.reservation_id), 'new reservation_id: ' + JSON.stringify(body));
  check(body.reservation_id !== S.r1.reservation_id, 'the reservation id changed');
  S.r1.old = S.r1.reservation_id;
  S.r1.reservation_id = body.reservation_id;
  const msg = await fails(function (cb) {
    client.msg_touch(S.r1.id, S.r1.old, {}, cb);
  });
  eq(msg, 'Reservation timed out', 'touch with the old reservation');
  const m = await ok(function (cb) {
    client.msg_get(S.r1.id, cb);
  });
  eq(m.reserved_count, 2, 'a touch counts as a reservation');
});

test('del with a stale reservation → 403 "Reservation timed out"', async function () {
  const msg = await fails(function (cb) {
    client.del(S.r1.id, { reservation_id: S.r1.old }, cb);
  });
  eq(msg, 'Reservation timed out', 'error text');
  await expectStatus('DELETE', '/queues/nq-main/messages/' + S.r1.id, { reservation_id: S.r1.old }, 403,
    'Reservation timed out');
  const msg2 = await fails(function (cb) {
    client.del(S.r1.id, {}, cb);
  });
  check(msg2.length > 0, 'a reserved message is not deleted without its reservation: ' + msg2);
  await ok(function (cb) {
    client.msg_get(S.r1.id, cb);
  });
});

test('del with the current reservation_id → "Deleted"', async function () {
  const body = await ok(function (cb) {
    client.del(S.r1.id, { reservation_id: S.r1.reservation_id }, cb);
  });
  eq(body && body.msg, 'Deleted', 'msg');
  await fails(function (cb) {
    client.msg_get(S.r1.id, cb);
  });
});

test('del of an unknown id → "Message not found"', async function () {
  const msg = await fails(function (cb) {
    client.del('123456789', {}, cb);
  });
  eq(msg, 'Message not found', 'error text');
});

test('msg_release with a wrong reservation → "Reservation timed out"', async function () {
  const msg = await fails(function (cb) {
    client.msg_release(S.r3.id, 'ffffffffffffffffffffffffffffffff', {}, cb);
  });
  eq(msg, 'Reservation timed out', 'error text');
});

test('msg_release with delay → hidden until the delay passes (reserve wait)', async function () {
  if (virtualClock) {
    // Two messages of this queue stay reserved (timeout 30) for later tests: a short delay.
    await frozen(async function (t0) {
      const body = await ok(function (cb) {
        client.msg_release(S.r3.id, S.r3.reservation_id, { delay: 5 }, cb);
      });
      eq(body && body.msg, 'Released', 'msg');
      eq(await ok(function (cb) { client.peek_n({ n: 5 }, cb); }), [], 'not ready during the delay');
      await advance(4);
      eq(await ok(function (cb) { client.peek_n({ n: 5 }, cb); }), [], 'not ready 1 s before the delay ends');
      const poll = watch(ok(function (cb) { client.reserve({ n: 1, wait: 10 }, cb); }));
      await reachServer();
      check(!poll.settled, 'the long poll waits while the clock stands still');
      const now = await advance(1);
      const m = await poll.promise;
      check(m, 'the released message came back');
      eq([m.id, m.body, m.reserved_count], [S.r3.id, 'm3', 2], 'message');
      eq(now.now_ms - t0, 5000, 'the long poll was answered when the clock reached the delay');
      S.r3 = m;
    });
    return;
  }
  const body = await ok(function (cb) {
    client.msg_release(S.r3.id, S.r3.reservation_id, { delay: 2 }, cb);
  });
  eq(body && body.msg, 'Released', 'msg');
  const t0 = Date.now();
  const now = await ok(function (cb) {
    client.peek_n({ n: 5 }, cb);
  });
  eq(now, [], 'not ready during the delay');
  const m = await ok(function (cb) {
    client.reserve({ n: 1, wait: 10 }, cb);
  }, 15000);
  const waited = Date.now() - t0;
  check(m, 'the released message came back');
  eq([m.id, m.body, m.reserved_count], [S.r3.id, 'm3', 2], 'message');
  check(waited >= 1500, 'came back after the delay (' + waited + ' ms)');
  check(waited < 8000, 'long poll answered once ready (' + waited + ' ms)');
  S.r3 = m;
});

test('dead_letter: a message at max_reservations moves to the dead-letter queue', async function () {
  await ok(function (cb) {
    client.msg_release(S.r3.id, S.r3.reservation_id, {}, cb);
  });
  const m = await ok(function (cb) {
    client.reserve({ n: 1 }, cb);
  });
  eq(m, undefined, 'not handed out a third time');
  const dl = await ok(function (cb) {
    q('nq-dlq').peek_n({ n: 5 }, cb);
  });
  eq(
    dl.map(function (x) {
      return [x.id, x.body, x.reserved_count];
    }),
    [[S.r3.id, 'm3', 2]],
    'dead-letter queue content'
  );
  const qi = await ok(function (cb) {
    q('nq-dlq').info(cb);
  });
  eq(qi.type, 'pull', 'dead-letter queue created as a pull queue');
});

test('del_multiple by reservation_ids from a reserve → "Deleted"', async function () {
  const body = await ok(function (cb) {
    client.del_multiple({ reservation_ids: S.batch }, cb);
  });
  eq(body && body.msg, 'Deleted', 'msg');
  for (const m of S.batch) {
    await fails(function (cb) {
      client.msg_get(m.id, cb);
    });
  }
  const qi = await ok(function (cb) {
    client.info(cb);
  });
  eq(qi.size, 0, 'size');
});

test('del_multiple by ids → "Deleted"', async function () {
  const ids = await ok(function (cb) {
    client.post(['d1', 'd2', 'd3'], cb);
  });
  const body = await ok(function (cb) {
    client.del_multiple({ ids: [ids[0], ids[2]] }, cb);
  });
  eq(body && body.msg, 'Deleted', 'msg');
  const left = await ok(function (cb) {
    client.peek_n({ n: 10 }, cb);
  });
  eq(
    left.map(function (m) {
      return m.body;
    }),
    ['d2'],
    'what is left'
  );
  S.d2 = ids[1];
});

test('del_multiple with an unknown id → error, nothing deleted', async function () {
  const msg = await fails(function (cb) {
    client.del_multiple({ ids: [S.d2, '123456789'] }, cb);
  });
  eq(msg, 'Message not found', 'error text');
  const m = await ok(function (cb) {
    client.msg_get(S.d2, cb);
  });
  eq(m.body, 'd2', 'the valid id was not deleted');
});

test('reserve with delete: true → messages returned and gone', async function () {
  await ok(function (cb) {
    client.post(['x1', 'x2'], cb);
  });
  const list = await ok(function (cb) {
    client.get_n({ n: 3, delete: true }, cb);
  });
  eq(
    list.map(function (m) {
      return m.body;
    }),
    ['d2', 'x1', 'x2'],
    'returned'
  );
  for (const m of list) {
    await fails(function (cb) {
      client.msg_get(m.id, cb);
    });
  }
  const qi = await ok(function (cb) {
    client.info(cb);
  });
  eq(qi.size, 0, 'size');
});

test('post with delay → hidden until due; reserve with wait gets it', async function () {
  const dq = q('nq-delay');
  if (virtualClock) {
    // Nothing is reserved anywhere now: the clock may move a full minute.
    await frozen(async function (t0) {
      const id = await ok(function (cb) {
        dq.post({ body: 'later', delay: 60 }, cb);
      });
      check(isId(id), 'id');
      const qi = await ok(function (cb) { dq.info(cb); });
      eq(qi.size, 1, 'a delayed message counts in size');
      eq(await ok(function (cb) { dq.peek_n({ n: 5 }, cb); }), [], 'not visible to peek yet');
      eq(await ok(function (cb) { dq.reserve({}, cb); }), undefined, 'not reservable yet');
      await advance(59);
      eq(await ok(function (cb) { dq.reserve({}, cb); }), undefined, 'not reservable 1 s before it is due');
      const poll = watch(ok(function (cb) { dq.reserve({ wait: 30 }, cb); }));
      await reachServer();
      check(!poll.settled, 'the long poll waits while the clock stands still');
      const now = await advance(1);
      const m = await poll.promise;
      check(m && m.id === id && m.body === 'later', 'got the delayed message: ' + JSON.stringify(m));
      eq(now.now_ms - t0, 60000, 'handed out when the clock reached the delay');
    });
    return;
  }
  const t0 = Date.now();
  const id = await ok(function (cb) {
    dq.post({ body: 'later', delay: 2 }, cb);
  });
  check(isId(id), 'id');
  const qi = await ok(function (cb) {
    dq.info(cb);
  });
  eq(qi.size, 1, 'a delayed message counts in size');
  eq(
    await ok(function (cb) {
      dq.peek_n({ n: 5 }, cb);
    }),
    [],
    'not visible to peek yet'
  );
  eq(
    await ok(function (cb) {
      dq.reserve({}, cb);
    }),
    undefined,
    'not reservable yet'
  );
  const m = await ok(function (cb) {
    dq.reserve({ wait: 10 }, cb);
  }, 15000);
  const waited = Date.now() - t0;
  check(m && m.id === id && m.body === 'later', 'got the delayed message: ' + JSON.stringify(m));
  check(waited >= 1500 && waited < 8000, 'after the delay (' + waited + ' ms)');
});

test('reserve with wait on an empty queue → nothing after the wait', async function () {
  if (virtualClock) {
    await frozen(async function (t0) {
      const poll = watch(ok(function (cb) {
        q('nq-delay').reserve({ n: 1, wait: 30 }, cb); // the hosted service's longest wait
      }));
      await reachServer();
      await advance(29);
      await reachServer(); // an answer the advance set off would be here by now
      check(!poll.settled, 'still waiting 1 s before the wait ends');
      const now = await advance(1);
      eq(await poll.promise, undefined, 'no message');
      eq(now.now_ms - t0, 30000, 'answered when the clock reached the end of the wait');
    });
    return;
  }
  const t0 = Date.now();
  const m = await ok(function (cb) {
    q('nq-delay').reserve({ n: 1, wait: 2 }, cb);
  }, 10000);
  const waited = Date.now() - t0;
  eq(m, undefined, 'no message');
  check(waited >= 1800 && waited < 6000, 'waited about 2 s (' + waited + ' ms)');
});

test('reserve with wait is woken by a post', async function () {
  const t0 = Date.now();
  const pending = ok(function (cb) {
    q('nq-delay').reserve({ n: 1, wait: 20, timeout: 30 }, cb);
  }, 25000);
  await sleep(300);
  const id = await ok(function (cb) {
    q('nq-delay').post('wake up', cb);
  });
  const m = await pending;
  const waited = Date.now() - t0;
  check(m && m.id === id && m.body === 'wake up', 'got the posted message: ' + JSON.stringify(m));
  check(isRid(m.reservation_id), 'reserved');
  check(waited < 5000, 'answered soon after the post (' + waited + ' ms)');
});

// The hosted service's timeouts are minutes long: these need the virtual clock.
const NEEDS_CLOCK = 'skip: the PostgreSQL back end runs on real time (minutes of waiting)';

test('reservation timeout (the default 60 s) → ready again; the old reservation is refused', async function () {
  if (!virtualClock) return NEEDS_CLOCK;
  const tq = q('vc-timeout');
  await frozen(async function () {
    const id = await ok(function (cb) { tq.post('held', cb); });
    const m1 = await ok(function (cb) { tq.reserve({}, cb); });
    eq([m1 && m1.id, m1 && m1.reserved_count], [id, 1], 'reserved');
    await advance(59);
    eq(await ok(function (cb) { tq.reserve({}, cb); }), undefined, 'still reserved after 59 s');
    await advance(1);
    const m2 = await ok(function (cb) { tq.reserve({}, cb); });
    eq([m2 && m2.id, m2 && m2.reserved_count], [id, 2], 'ready again after 60 s, reserved a second time');
    eq(await fails(function (cb) { tq.del(id, { reservation_id: m1.reservation_id }, cb); }),
      'Reservation timed out', 'delete with the timed-out reservation');
    const del = await ok(function (cb) { tq.del(id, { reservation_id: m2.reservation_id }, cb); });
    eq(del && del.msg, 'Deleted', 'delete with the new reservation');
  });
});

test('a 10-minute reservation (reserve timeout 600) ends after 10 minutes; msg_touch extends it', async function () {
  if (!virtualClock) return NEEDS_CLOCK;
  const tq = q('vc-timeout');
  await frozen(async function () {
    const id = await ok(function (cb) { tq.post('long job', cb); });
    const m1 = await ok(function (cb) { tq.reserve({ timeout: 600 }, cb); });
    eq(m1 && m1.id, id, 'reserved for 10 minutes');
    await advance(599);
    const touched = await ok(function (cb) { tq.msg_touch(id, m1.reservation_id, { timeout: 600 }, cb); });
    eq(touched && touched.msg, 'Touched', 'touched 1 s before the end: 10 more minutes');
    await advance(599);
    eq(await ok(function (cb) { tq.reserve({}, cb); }), undefined, 'still reserved 1 s before the new end');
    await advance(1);
    const m2 = await ok(function (cb) { tq.reserve({}, cb); });
    eq([m2 && m2.id, m2 && m2.reserved_count], [id, 3], 'ready again (the touch counted as a reservation)');
    await ok(function (cb) { tq.del(id, { reservation_id: m2.reservation_id }, cb); });
    await ok(function (cb) { tq.del_queue(cb); });
  });
});

test('message_expiration 60 (the shortest allowed) → the message is gone after a minute', async function () {
  if (!virtualClock) return NEEDS_CLOCK;
  await ok(function (cb) { client.create_queue('vc-expire', { message_expiration: 60 }, cb); });
  const xq = q('vc-expire');
  await frozen(async function () {
    const id = await ok(function (cb) { xq.post('short-lived', cb); });
    await advance(59);
    eq((await ok(function (cb) { xq.peek_n({ n: 5 }, cb); })).map(function (m) { return m.id; }), [id],
      'still there after 59 s');
    await advance(1);
    eq(await ok(function (cb) { xq.peek_n({ n: 5 }, cb); }), [], 'gone after 60 s');
    eq((await ok(function (cb) { xq.info(cb); })).size, 0, 'size');
    await fails(function (cb) { xq.msg_get(id, cb); });
  });
  await ok(function (cb) { xq.del_queue(cb); });
});

test('push retry: a subscriber that failed is tried again after retries_delay (60 s)', async function () {
  if (!virtualClock) return NEEDS_CLOCK;
  const got = [];
  const subscriber = http.createServer(function (req, res) {
    req.resume();
    req.on('end', function () {
      got.push(req.headers['iron-message-id']);
      res.writeHead(got.length === 1 ? 500 : 200); // fails once, then takes it
      res.end();
    });
  });
  await new Promise(function (resolve) { subscriber.listen(0, '127.0.0.1', resolve); });
  async function until(n) { // the pusher posts on its own: wait (bounded) for the nth request
    for (let i = 0; i < 250 && got.length < n; i++) await sleep(20);
  }
  const pq = q('vc-push');
  try {
    await ok(function (cb) {
      client.create_queue('vc-push', { type: 'unicast', push: {
        subscribers: [{ name: 'flaky', url: 'http://127.0.0.1:' + subscriber.address().port + '/' }],
        retries: 3, retries_delay: 60 } }, cb);
    });
    await frozen(async function () {
      const id = await ok(function (cb) { pq.post('try me twice', cb); });
      await until(1);
      eq(got, [id], 'first attempt');
      let st = null;
      for (let i = 0; i < 50; i++) { // the pusher records the 500 just after the subscriber answers
        const s = await ok(function (cb) { pq.msg_push_statuses(id, cb); });
        st = s && s.subscribers && s.subscribers[0];
        if (st && st.status_code === 500) break;
        await sleep(20);
      }
      eq(st && [st.status_code, st.status, st.tries, st.retries_remaining], [500, 'retrying', 1, 2],
        'push status after the failure');
      await advance(59);
      await sleep(100); // a retry the advance set off would have reached the subscriber
      eq(got.length, 1, 'no retry before retries_delay');
      await advance(1);
      await until(2);
      eq(got, [id, id], 'retried once retries_delay had passed');
      let size = -1;
      for (let i = 0; i < 50 && size !== 0; i++) { // the pusher records the 200 just after the subscriber answers
        size = (await ok(function (cb) { pq.info(cb); })).size;
        if (size !== 0) await sleep(20);
      }
      eq(size, 0, 'delivered by the retry: size 0');
    });
    await ok(function (cb) { pq.del_queue(cb); });
  } finally {
    subscriber.close();
  }
});

test('clear → "Cleared", size 0', async function () {
  await ok(function (cb) {
    client.post(['c1', 'c2', { body: 'c3', delay: 60 }], cb);
  });
  await ok(function (cb) {
    client.reserve({}, cb);
  });
  const body = await ok(function (cb) {
    client.clear(cb);
  });
  eq(body && body.msg, 'Cleared', 'msg');
  const qi = await ok(function (cb) {
    client.info(cb);
  });
  eq(qi.size, 0, 'size');
  eq(
    await ok(function (cb) {
      client.peek_n({ n: 5 }, cb);
    }),
    [],
    'peek'
  );
});

test('add_subscribers on a pull queue → error callback', async function () {
  const msg = await fails(function (cb) {
    client.add_subscribers({ name: 's1', url: 'http://127.0.0.1:9/' }, cb);
  });
  eq(msg, 'Queue is not a push queue', 'error text');
});

test('rpl_subscribers on a pull queue → error callback', async function () {
  const msg = await fails(function (cb) {
    client.rpl_subscribers([{ name: 's1', url: 'http://127.0.0.1:9/' }], cb);
  });
  eq(msg, 'Queue is not a push queue', 'error text');
});

test('rm_subscribers on a pull queue → error callback', async function () {
  const msg = await fails(function (cb) {
    client.rm_subscribers({ name: 's1' }, cb);
  });
  eq(msg, 'Queue is not a push queue', 'error text');
});

test('subscriber calls on a missing queue → "Queue not found"', async function () {
  const msg = await fails(function (cb) {
    q('nq-missing').add_subscribers({ name: 's1', url: 'http://127.0.0.1:9/' }, cb);
  });
  eq(msg, 'Queue not found', 'error text');
});

test('msg_push_statuses on a pull queue → error callback', async function () {
  const id = await ok(function (cb) {
    client.post('push status probe', cb);
  });
  const msg = await fails(function (cb) {
    client.msg_push_statuses(id, cb);
  });
  eq(msg, 'Queue is not a push queue', 'error text');
  S.probe = id;
});

test('del_msg_push_status on a pull queue deletes the reserved message', async function () {
  const m = await ok(function (cb) {
    client.reserve({}, cb);
  });
  eq(m && m.id, S.probe, 'reserved the probe');
  const body = await ok(function (cb) {
    client.del_msg_push_status(m.id, m.reservation_id, 's1', cb);
  });
  eq(body && body.msg, 'Deleted', 'msg');
  await fails(function (cb) {
    client.msg_get(m.id, cb);
  });
});

test('post to a missing queue creates it with defaults', async function () {
  const aq = q('nq-auto');
  const id = await ok(function (cb) {
    aq.post({ body: 'auto' }, cb);
  });
  check(isId(id), 'id');
  const qi = await ok(function (cb) {
    aq.info(cb);
  });
  eq(
    [qi.name, qi.type, qi.size, qi.total_messages, qi.message_timeout, qi.message_expiration],
    ['nq-auto', 'pull', 1, 1, 60, 604800],
    'queue'
  );
  check(!('dead_letter' in qi), 'no dead_letter');
});

test('message calls on a missing queue → "Queue not found"', async function () {
  const mq = q('nq-missing');
  eq(await fails(function (cb) {
    mq.reserve({}, cb);
  }), 'Queue not found', 'reserve');
  eq(await fails(function (cb) {
    mq.peek_n({ n: 1 }, cb);
  }), 'Queue not found', 'peek_n');
  eq(await fails(function (cb) {
    mq.clear(cb);
  }), 'Queue not found', 'clear');
  eq(await fails(function (cb) {
    mq.del('123456789', {}, cb);
  }), 'Queue not found', 'del');
  eq(await fails(function (cb) {
    mq.msg_touch('123456789', 'abc', {}, cb);
  }), 'Queue not found', 'msg_touch');
  eq(await fails(function (cb) {
    mq.msg_release('123456789', 'abc', {}, cb);
  }), 'Queue not found', 'msg_release');
  await expectStatus('POST', '/queues/nq-missing/reservations', {}, 404, 'Queue not found');
});

test('update_queue removes the dead letter with queue_name ""', async function () {
  const body = await ok(function (cb) {
    client.update_queue('nq-main', { dead_letter: { queue_name: '' } }, cb);
  });
  check(body && body.queue && !('dead_letter' in body.queue), 'dead_letter gone: ' + JSON.stringify(body));
});

test('del_queue → "Deleted"; the queue is gone', async function () {
  const body = await ok(function (cb) {
    client.del_queue(cb);
  });
  eq(body && body.msg, 'Deleted', 'msg');
  await fails(function (cb) {
    client.info(cb);
  });
  await expectStatus('GET', '/queues/nq-main', undefined, 404, 'Queue not found');
  const list = await ok(function (cb) {
    client.queues({ prefix: 'nq-' }, cb);
  });
  eq(
    list.map(function (x) {
      return x.name;
    }),
    ['nq-auto', 'nq-delay', 'nq-dlq'],
    'remaining nq- queues'
  );
});

test('del_queue on a missing queue → "Queue not found"', async function () {
  const msg = await fails(function (cb) {
    client.del_queue(cb);
  });
  eq(msg, 'Queue not found', 'error text');
});

test('anvil stops cleanly on SIGTERM', async function () {
  const code = await new Promise(function (resolve) {
    if (serverExited) {
      resolve('already exited');
      return;
    }
    const timer = setTimeout(function () {
      resolve('did not exit within 5 s');
    }, 5000);
    server.once('exit', function (c, sig) {
      clearTimeout(timer);
      resolve(sig ? 'signal ' + sig : c);
    });
    server.kill('SIGTERM');
  });
  eq(code, 0, 'exit code');
});

// ---- main ----

async function main() {
  try {
    port = await startServer();
  } catch (e) {
    fail('start anvil', e.message);
    finish();
    return;
  }
  // The virtual clock: test mode is on in dev mode; the PostgreSQL back end keeps real time.
  try {
    const st = await request('GET', '/admin');
    virtualClock = st.status === 200 && st.json && st.json.backend === 'embedded';
  } catch (e) {
    virtualClock = false;
  }
  console.log('# clock: ' + (virtualClock ? 'virtual (the test kit freezes and advances it)' : 'real time'));
  client = new ironMq.Client({
    host: '127.0.0.1',
    port: port,
    scheme: 'http',
    project_id: PROJECT,
    token: 'any',
    api_version: 3,
    queue_name: 'nq-main',
  });
  for (const t of tests) {
    if (finished) return;
    try {
      const outcome = await t.fn();
      if (finished) return; // stopped while the test ran: its outcome no longer counts
      if (typeof outcome === 'string' && outcome.startsWith('skip')) {
        console.log('skip ' + t.name + ': ' + outcome.replace(/^skip:\s*/, ''));
        continue;
      }
      passed++;
      console.log('ok   ' + t.name);
    } catch (e) {
      if (finished) return;
      fail(t.name, (e && e.message) || e);
    }
  }
  clearTimeout(globalTimer);
  finish();
}

main();
