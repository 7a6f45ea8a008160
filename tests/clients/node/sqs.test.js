'use strict';
// Real-client test of anvil's SQS-compatible front: drives it with the official AWS SDK for
// JavaScript v3 SQS client (npm @aws-sdk/client-sqs, pinned in package.json).
//   npm ci && ANVIL_BIN=/path/to/anvil node sqs.test.js
// Starts anvil on a free port with a fresh data directory (dev mode) and a second one with
// `--token secret1:projA`, runs every SQS action the front serves, prints
// "ok   name" / "FAIL name: reason" per check and, as the last line,
// "RESULT passed=N failed=M". Exit code 0 only when M == 0.
//
// What the pinned SDK does, and what this file relies on (read from its dist-cjs):
// - Protocol: AWS JSON 1.0 (POST /, X-Amz-Target: AmazonSQS.<Action>,
//   Content-Type: application/x-amz-json-1.0, JSON bodies) in "query compatible" mode: it
//   also sends `x-amzn-query-mode: true` and, on an error, reads the
//   `x-amzn-query-error: <Code>;<Sender|Receiver>` header. The exception's `name` is the
//   error shape (e.g. QueueDoesNotExist, found from __type or from the query code
//   AWS.SimpleQueueService.NonExistentQueue), `Code` is the query code from the header,
//   `$metadata.httpStatusCode` the status.
// - Endpoint: with `endpoint` set in the client config, every request goes there, whatever
//   host the QueueUrl names (middleware-sdk-sqs's useQueueUrlAsEndpoint, default true, only
//   replaces the endpoint when none was configured). The server finds the queue from the
//   QueueUrl's path in the JSON body.
// - MD5: middleware-sdk-sqs checks MD5OfMessageBody of SendMessage and of each successful
//   SendMessageBatch entry, and MD5OfBody of every received message, and throws on a
//   mismatch (or a missing MD5). It does NOT check MD5OfMessageAttributes: this file computes
//   that digest itself (md5OfAttributes, the algorithm the Java SDK checks) and compares.
//   The first checks prove both on a stub server that answers wrong digests.
// - Retries are off (maxAttempts 1) so that errors and timings are the server's own.
// Time: on the embedded back end the visibility-timeout, delay and long-poll-wait checks
// freeze anvil's clock and advance it through the test kit (POST /admin/clock/freeze |
// advance | unfreeze, docs/testing-with-anvil.md) instead of sleeping; each advance is as
// long as the old sleep, so the rest of the suite sees the same clock. On the PostgreSQL
// back end (ANVIL_TEST_BACKEND) the clock cannot be frozen and they run in real time.

const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

// Only loopback is ever contacted: keep proxies and AWS settings from the environment out.
Object.keys(process.env).forEach(function (k) {
  if (/^(https?_proxy|all_proxy|no_proxy)$/i.test(k) || /^AWS_/.test(k)) delete process.env[k];
});
process.env.AWS_SDK_LOAD_CONFIG = '0';
process.env.AWS_CONFIG_FILE = '/nonexistent/anvil-sqs-test-config';
process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/anvil-sqs-test-credentials';
process.env.AWS_EC2_METADATA_DISABLED = 'true';

const sqsLib = require('@aws-sdk/client-sqs');
const { clockHelpers } = require('./clock');
const {
  SQSClient,
  CreateQueueCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
  SendMessageCommand,
  SendMessageBatchCommand,
  ReceiveMessageCommand,
  DeleteMessageCommand,
  DeleteMessageBatchCommand,
  ChangeMessageVisibilityCommand,
  ChangeMessageVisibilityBatchCommand,
  PurgeQueueCommand,
  DeleteQueueCommand,
  TagQueueCommand,
  ListQueueTagsCommand,
  UntagQueueCommand,
  AddPermissionCommand,
} = sqsLib;

const ANVIL_BIN = process.env.ANVIL_BIN || path.resolve(__dirname, '..', '..', '..', 'build', 'anvil');
const DEV = '000000000000'; // the account of dev-mode requests without a queue URL
const READY_TIMEOUT_MS = 10000;
const GLOBAL_TIMEOUT_MS = 90000;
const CALL_TIMEOUT_MS = 8000;

const started = Date.now();
const servers = []; // {proc, exited, log, dataDir, name}
let passed = 0;
let failed = 0;
let finished = false;
let port = 0; // dev-mode server
let tokPort = 0; // server with --token secret1:projA
let client = null; // dev-mode client, plain access key

// ---- cleanup and the result line ----

function cleanup() {
  servers.forEach(function (s) {
    if (!s.exited) {
      try {
        s.proc.kill('SIGKILL');
      } catch (e) {
        /* already gone */
      }
    }
    if (s.dataDir) {
      try {
        fs.rmSync(s.dataDir, { recursive: true, force: true });
      } catch (e) {
        /* best effort */
      }
      s.dataDir = null;
    }
  });
  if (stub) {
    try {
      stub.close();
    } catch (e) {
      /* best effort */
    }
  }
}

// Kills the servers, waits (at most 2 s) until they are gone, removes the data directories,
// prints the result line and exits. The 'exit' handler repeats the cleanup synchronously.
function finish() {
  if (finished) return;
  finished = true;
  clearTimeout(globalTimer);
  const alive = servers.filter(function (s) {
    return !s.exited;
  });
  if (alive.length === 0) {
    report();
    return;
  }
  const giveUp = setTimeout(report, 2000);
  let left = alive.length;
  alive.forEach(function (s) {
    s.proc.once('exit', function () {
      if (--left === 0) {
        clearTimeout(giveUp);
        report();
      }
    });
    try {
      s.proc.kill('SIGKILL');
    } catch (e) {
      /* the exit handler or the timer reports */
    }
  });
}

let reported = false;
function report() {
  if (reported) return;
  reported = true;
  const logs = servers.map(function (s) {
    return { name: s.name, log: s.log };
  });
  cleanup();
  if (failed > 0) {
    logs.forEach(function (l) {
      if (!l.log) return;
      const lines = l.log.split('\n').filter(Boolean);
      // A sanitizer report, if any, matters more than the last requests.
      const san = lines.findIndex(function (x) {
        return /Sanitizer|runtime error:/.test(x);
      });
      const tail = san >= 0 ? lines.slice(san, san + 40) : lines.slice(-20);
      console.log('# ' + (san >= 0 ? 'sanitizer report in' : 'last lines of') + ' the ' + l.name + ' server log:');
      tail.forEach(function (x) {
        console.log('#   ' + x);
      });
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

// JSON with object keys sorted, so that key order never matters.
function canon(v) {
  return JSON.stringify(v, function (k, x) {
    if (x instanceof Uint8Array) return 'bytes:' + Buffer.from(x).toString('hex');
    if (x && typeof x === 'object' && !Array.isArray(x)) {
      const o = {};
      Object.keys(x).sort().forEach(function (n) { o[n] = x[n]; });
      return o;
    }
    return x;
  });
}

function eq(actual, expected, what) {
  const a = canon(actual);
  const e = canon(expected);
  if (a !== e) throw new Error(what + ': expected ' + e + ', got ' + a);
}

// A test that builds on an earlier one's result.
function need(v, what) {
  if (v === undefined || v === null) throw new Error('skipped: needs ' + what + ' (an earlier check failed)');
  return v;
}

function isId(v) {
  return typeof v === 'string' && /^[0-9]+$/.test(v);
}

function sorted(a) {
  return a.slice().sort();
}

function sleep(ms) {
  return new Promise(function (resolve) {
    setTimeout(resolve, ms);
  });
}

// ---- the virtual clock (the test kit's /admin/clock routes, dev-mode server only) ----

let virtualClock = false; // set in main(): the embedded back end in test mode

function adminCall(method, what, body) {
  return new Promise(function (resolve, reject) {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: port, method: method, path: '/admin' + what, agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
    function (res) {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', function (c) { text += c; });
      res.on('end', function () {
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* left null */ }
        resolve({ status: res.statusCode, json: json, text: text });
      });
    });
    req.setTimeout(CALL_TIMEOUT_MS, function () { req.destroy(new Error('admin request timed out')); });
    req.on('error', reject);
    req.end(data);
  });
}

async function clockCall(what, body) {
  const r = await adminCall('POST', '/clock/' + what, body);
  eq(r.status, 200, 'clock ' + what + ' status (' + r.text + ')');
  return r.json; // {"mode", "now_ms", "offset_ms"}
}

const { advance, frozen, reachServer } = clockHelpers(clockCall);

// fn with the clock frozen where it can be, else in real time.
function maybeFrozen(fn) {
  return virtualClock ? frozen(fn) : fn();
}

// A promise's state without waiting for it.
function watch(promise) {
  const w = { settled: false, promise: promise };
  promise.then(function () { w.settled = true; }, function () { w.settled = true; });
  return w;
}

// ---- MD5s as SQS computes them ----

function md5(data) {
  return crypto.createHash('md5').update(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).digest('hex');
}

// MD5OfMessageAttributes: for each attribute in name order, the name, the data type (each as a
// 4-byte big-endian length then the UTF-8 bytes), one transport byte (1 string, 2 binary) and
// the value (length-prefixed: the UTF-8 of StringValue or the BinaryValue bytes).
function md5OfAttributes(attrs) {
  const h = crypto.createHash('md5');
  function lv(buf) {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(buf.length, 0);
    h.update(l);
    h.update(buf);
  }
  Object.keys(attrs)
    .sort()
    .forEach(function (name) {
      const a = attrs[name];
      lv(Buffer.from(name, 'utf8'));
      lv(Buffer.from(a.DataType, 'utf8'));
      if (a.StringValue !== undefined) {
        h.update(Buffer.from([1]));
        lv(Buffer.from(a.StringValue, 'utf8'));
      } else {
        h.update(Buffer.from([2]));
        lv(Buffer.from(a.BinaryValue));
      }
    });
  return h.digest('hex');
}

// Attributes in a comparable form (binary values as hex).
function attrView(attrs) {
  const out = {};
  Object.keys(attrs || {})
    .sort()
    .forEach(function (n) {
      const a = attrs[n];
      out[n] = { DataType: a.DataType };
      if (a.StringValue !== undefined) out[n].StringValue = a.StringValue;
      if (a.BinaryValue !== undefined) out[n].BinaryValue = Buffer.from(a.BinaryValue).toString('hex');
    });
  return out;
}

// ---- calling the SDK ----

function mkClient(p, accessKeyId) {
  return new SQSClient({
    endpoint: 'http://127.0.0.1:' + p,
    region: 'us-east-1',
    credentials: { accessKeyId: accessKeyId, secretAccessKey: 'any-secret' },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 3000, requestTimeout: 30000 },
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise(function (resolve, reject) {
      timer = setTimeout(function () {
        reject(new Error(what + ': no answer within ' + ms + ' ms (hang)'));
      }, ms);
    }),
  ]).finally(function () {
    clearTimeout(timer);
  });
}

function describeErr(e) {
  if (!e) return String(e);
  const st = e.$metadata && e.$metadata.httpStatusCode;
  return (
    (e.name || 'Error') +
    (st ? ' (HTTP ' + st + ')' : '') +
    (e.Code ? ' Code=' + e.Code : '') +
    ': ' +
    e.message
  );
}

// Runs a command and expects success; returns the output.
async function ok(c, Cmd, input, timeoutMs) {
  const what = Cmd.name.replace(/Command$/, '');
  try {
    return await withTimeout(c.send(new Cmd(input)), timeoutMs || CALL_TIMEOUT_MS, what);
  } catch (e) {
    throw new Error(what + ' ' + JSON.stringify(input, jsonBin) + ' failed: ' + describeErr(e));
  }
}

function jsonBin(k, v) {
  if (v instanceof Uint8Array) return 'bytes:' + Buffer.from(v).toString('hex');
  return v;
}

// Runs a command and expects a service error (an answer from the server with an error
// status, not a hang, not a local SDK error); returns the exception.
async function fails(c, Cmd, input, timeoutMs) {
  const what = Cmd.name.replace(/Command$/, '');
  let out;
  try {
    out = await withTimeout(c.send(new Cmd(input)), timeoutMs || CALL_TIMEOUT_MS, what);
  } catch (e) {
    check(
      e && e.$metadata && typeof e.$metadata.httpStatusCode === 'number',
      what + ': expected an error answer from the server, got ' + describeErr(e)
    );
    return e;
  }
  throw new Error(what + ' ' + JSON.stringify(input, jsonBin) + ': expected an error, got success: ' +
    JSON.stringify(out, function (k, v) {
      return k === '$metadata' ? undefined : jsonBin(k, v);
    }));
}

// The error shapes of the SQS model: their JSON body's __type is com.amazonaws.sqs#<name>.
const MODELED_ERRORS = [
  'QueueDoesNotExist', 'QueueNameExists', 'ReceiptHandleIsInvalid', 'InvalidAttributeName',
  'InvalidAttributeValue', 'EmptyBatchRequest', 'TooManyEntriesInBatchRequest', 'BatchEntryIdsNotDistinct',
  'MessageNotInflight', 'UnsupportedOperation',
];

// name: a string or a RegExp matched against e.name (and, for a RegExp, e.Code too). Also
// checks what the SDK kept of the wire: the body's __type for modelled errors, and the
// x-amzn-query-error header's fault type (e.Type) "Sender" for a client error.
function errIs(e, name, status, what) {
  const st = e.$metadata.httpStatusCode;
  const nameOk = name instanceof RegExp ? name.test(e.name) || name.test(e.Code || '') : e.name === name;
  const stOk = Array.isArray(status) ? status.indexOf(st) >= 0 : st === status;
  check(nameOk && stOk, what + ': expected ' + name + ' (HTTP ' + status + '), got ' + describeErr(e));
  if (typeof name === 'string' && MODELED_ERRORS.indexOf(name) >= 0) {
    eq(e.__type, 'com.amazonaws.sqs#' + name, what + ': __type of the JSON error body');
  }
  eq(e.Type, 'Sender', what + ': fault type of x-amzn-query-error');
}

async function expectErr(c, Cmd, input, name, status, what) {
  const e = await fails(c, Cmd, input);
  errIs(e, name, status, what || Cmd.name.replace(/Command$/, ''));
  return e;
}

function msgs(out) {
  return (out && out.Messages) || [];
}

// Receives (long polls of at most 1 s) until n messages came or ms passed; returns them.
async function receiveUntil(c, input, n, ms) {
  const got = [];
  const end = Date.now() + ms;
  while (got.length < n && Date.now() < end) {
    const wait = Math.max(0, Math.min(1, Math.floor((end - Date.now()) / 1000)));
    const m = msgs(await ok(c, ReceiveMessageCommand, Object.assign({}, input, { WaitTimeSeconds: wait }), 5000));
    m.forEach(function (x) { got.push(x); });
  }
  return got;
}

// ---- plain HTTP, for the IronMQ v3 side ----

function v3(p, method, pathTail, body, token) {
  return new Promise(function (resolve, reject) {
    const data = body === undefined ? null : JSON.stringify(body);
    const headers = { Authorization: 'OAuth ' + (token || 'any') };
    if (data !== null) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(data);
    }
    const req = http.request(
      { host: '127.0.0.1', port: p, method: method, path: '/3/projects' + pathTail, headers: headers, agent: false },
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
          resolve({ status: res.statusCode, json: json, text: text });
        });
      }
    );
    req.setTimeout(CALL_TIMEOUT_MS, function () {
      req.destroy(new Error('v3 request timed out'));
    });
    req.on('error', reject);
    if (data !== null) req.write(data);
    req.end();
  });
}

// ---- the servers ----

function startServer(name, extraArgs) {
  return new Promise(function (resolve, reject) {
    if (!fs.existsSync(ANVIL_BIN)) {
      reject(new Error('anvil binary not found at ' + ANVIL_BIN + ' (set ANVIL_BIN)'));
      return;
    }
    const s = { name: name, exited: false, log: '', dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'anvil-sqs-')) };
    s.proc = childProcess.spawn(
      ANVIL_BIN,
      ['--port', '0', '--data-dir', s.dataDir, '--durability', 'normal']
        // ANVIL_TEST_BACKEND=postgres://...: the same calls against the PostgreSQL back end
        .concat(process.env.ANVIL_TEST_BACKEND ? ['--backend', process.env.ANVIL_TEST_BACKEND] : [])
        .concat(extraArgs || []),
      { stdio: ['ignore', 'pipe', 'pipe'] }
    );
    servers.push(s);
    let out = '';
    let settled = false;
    const timer = setTimeout(function () {
      if (settled) return;
      settled = true;
      reject(new Error('no ready line within ' + READY_TIMEOUT_MS / 1000 + ' s'));
    }, READY_TIMEOUT_MS);
    s.proc.stderr.setEncoding('utf8');
    s.proc.stderr.on('data', function (c) {
      s.log += c;
    });
    s.proc.stdout.setEncoding('utf8');
    s.proc.stdout.on('data', function (c) {
      out += c;
      const m = /^anvil ready http:\/\/127\.0\.0\.1:(\d+)\s*$/m.exec(out);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    s.proc.on('error', function (e) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    s.proc.on('exit', function (code, signal) {
      s.exited = true;
      s.log += '[anvil exited: code ' + code + ', signal ' + signal + ']\n';
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error('anvil exited before it was ready (code ' + code + ', signal ' + signal + ')'));
    });
  });
}

// ---- a stub SQS server answering wrong digests, to prove the SDK's MD5 checks are on ----

let stub = null;
function startStub() {
  return new Promise(function (resolve) {
    stub = http.createServer(function (req, res) {
      let body = '';
      req.on('data', function (c) {
        body += c;
      });
      req.on('end', function () {
        const action = String(req.headers['x-amz-target'] || '').replace(/^AmazonSQS\./, '');
        let out = {};
        if (action === 'SendMessage') {
          out = { MessageId: '1', MD5OfMessageBody: md5('not the body') };
        } else if (action === 'SendMessageBatch') {
          out = { Successful: [{ Id: 'a', MessageId: '1', MD5OfMessageBody: md5('not the body') }], Failed: [] };
        } else if (action === 'ReceiveMessage') {
          out = { Messages: [{ MessageId: '1', ReceiptHandle: 'h', Body: 'the body', MD5OfBody: md5('other') }] };
        }
        const text = JSON.stringify(out);
        res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.0', 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      });
    });
    stub.listen(0, '127.0.0.1', function () {
      resolve(stub.address().port);
    });
  });
}

// ---- the tests ----

const tests = [];
function test(name, fn) {
  tests.push({ name: name, fn: fn });
}

function qurl(name, account) {
  return 'http://127.0.0.1:' + port + '/' + (account || DEV) + '/' + name;
}

async function mkQueue(name, attrs, c) {
  const out = await ok(c || client, CreateQueueCommand, attrs ? { QueueName: name, Attributes: attrs } : { QueueName: name });
  check(typeof out.QueueUrl === 'string', 'CreateQueue ' + name + ' answered a QueueUrl: ' + JSON.stringify(out.QueueUrl));
  return out.QueueUrl;
}

async function attrsOf(url, names, c) {
  const out = await ok(c || client, GetQueueAttributesCommand, { QueueUrl: url, AttributeNames: names || ['All'] });
  return out.Attributes || {};
}

async function counts(url) {
  const a = await attrsOf(url, [
    'ApproximateNumberOfMessages',
    'ApproximateNumberOfMessagesNotVisible',
    'ApproximateNumberOfMessagesDelayed',
  ]);
  return [a.ApproximateNumberOfMessages, a.ApproximateNumberOfMessagesNotVisible, a.ApproximateNumberOfMessagesDelayed];
}

const S = {}; // state handed from test to test

// -- self-checks: the harness would notice wrong digests --

test('self-check: the SDK rejects a wrong MD5OfMessageBody / MD5OfBody (stub server)', async function () {
  const sp = await startStub();
  const c = mkClient(sp, 'AKIDSTUB');
  const url = 'http://127.0.0.1:' + sp + '/' + DEV + '/stub';
  const probes = [
    [SendMessageCommand, { QueueUrl: url, MessageBody: 'the body' }],
    [SendMessageBatchCommand, { QueueUrl: url, Entries: [{ Id: 'a', MessageBody: 'the body' }] }],
    [ReceiveMessageCommand, { QueueUrl: url }],
  ];
  for (const [Cmd, input] of probes) {
    let threw = null;
    try {
      await withTimeout(c.send(new Cmd(input)), CALL_TIMEOUT_MS, Cmd.name);
    } catch (e) {
      threw = e;
    }
    check(threw && /checksum/i.test(threw.message), Cmd.name + ' with a wrong digest must throw an MD5 error, got ' +
      (threw ? describeErr(threw) : 'success'));
  }
  c.destroy();
  stub.close();
  stub = null;
});

test('self-check: md5OfAttributes matches a known MD5OfMessageAttributes', async function () {
  eq(
    md5OfAttributes({ 'SOME_Valid.attribute-Name': { DataType: 'Number', StringValue: '1493147359900' } }),
    '36655e7e9d7c0e8479fa3f3f42247ae7',
    'digest'
  );
  check(
    md5OfAttributes({ a: { DataType: 'Binary', BinaryValue: Uint8Array.from([1]) } }) !==
      md5OfAttributes({ a: { DataType: 'Binary', BinaryValue: Uint8Array.from([2]) } }),
    'the digest depends on binary values'
  );
});

// -- queues --

test('CreateQueue → QueueUrl http://<Host>/000000000000/<name>', async function () {
  const url = await mkQueue('sq-main');
  eq(url, qurl('sq-main'), 'QueueUrl');
  S.main = url;
});

test('GetQueueAttributes All on a new queue → the SQS defaults', async function () {
  const a = await attrsOf(need(S.main, 'sq-main'));
  const now = Date.now() / 1000;
  eq(
    [a.VisibilityTimeout, a.MessageRetentionPeriod, a.DelaySeconds, a.MaximumMessageSize, a.ReceiveMessageWaitTimeSeconds],
    ['30', '345600', '0', '262144', '0'],
    'VisibilityTimeout, MessageRetentionPeriod, DelaySeconds, MaximumMessageSize, ReceiveMessageWaitTimeSeconds'
  );
  eq(
    [a.ApproximateNumberOfMessages, a.ApproximateNumberOfMessagesNotVisible, a.ApproximateNumberOfMessagesDelayed],
    ['0', '0', '0'],
    'counts'
  );
  eq(a.QueueArn, 'arn:aws:sqs:us-east-1:' + DEV + ':sq-main', 'QueueArn');
  check(/^[0-9]+$/.test(a.CreatedTimestamp || '') && Math.abs(Number(a.CreatedTimestamp) - now) < 120,
    'CreatedTimestamp is epoch seconds of about now: ' + a.CreatedTimestamp);
  check(/^[0-9]+$/.test(a.LastModifiedTimestamp || '') && Math.abs(Number(a.LastModifiedTimestamp) - now) < 120,
    'LastModifiedTimestamp is epoch seconds of about now: ' + a.LastModifiedTimestamp);
  check(!('RedrivePolicy' in a), 'no RedrivePolicy on a queue without one: ' + a.RedrivePolicy);
});

test('GetQueueAttributes with names → only those attributes', async function () {
  const a = await attrsOf(need(S.main, 'sq-main'), ['VisibilityTimeout', 'QueueArn']);
  eq(sorted(Object.keys(a)), ['QueueArn', 'VisibilityTimeout'], 'attribute names');
  eq(a.VisibilityTimeout, '30', 'VisibilityTimeout');
});

test('GetQueueAttributes with an unknown attribute name → InvalidAttributeName', async function () {
  await expectErr(client, GetQueueAttributesCommand, { QueueUrl: need(S.main, 'sq-main'), AttributeNames: ['NoSuchAttribute'] },
    'InvalidAttributeName', 400);
});

test('CreateQueue with Attributes → stored; same again → same URL; different → QueueNameExists', async function () {
  const attrs = { VisibilityTimeout: '45', MessageRetentionPeriod: '3600', DelaySeconds: '0', MaximumMessageSize: '2048' };
  const url = await mkQueue('sq-conf', attrs);
  eq(url, qurl('sq-conf'), 'QueueUrl');
  const a = await attrsOf(url);
  eq([a.VisibilityTimeout, a.MessageRetentionPeriod, a.DelaySeconds, a.MaximumMessageSize, a.ReceiveMessageWaitTimeSeconds],
    ['45', '3600', '0', '2048', '0'], 'attributes');
  eq(await mkQueue('sq-conf', attrs), url, 'CreateQueue with identical attributes answers the URL');
  const e = await expectErr(client, CreateQueueCommand,
    { QueueName: 'sq-conf', Attributes: Object.assign({}, attrs, { VisibilityTimeout: '46' }) }, 'QueueNameExists', 400);
  eq(e.Code, 'QueueAlreadyExists', 'query error code (x-amzn-query-error)');
  eq((await attrsOf(url, ['VisibilityTimeout'])).VisibilityTimeout, '45', 'the existing queue is unchanged');
  eq(await mkQueue('sq-main'), S.main, 'CreateQueue of an existing queue without attributes answers its URL');
});

test('CreateQueue with an invalid name or attribute value → 400, no queue', async function () {
  await expectErr(client, CreateQueueCommand, { QueueName: 'bad name!' }, /InvalidParameterValue/, 400, 'name "bad name!"');
  await expectErr(client, CreateQueueCommand, { QueueName: 'x'.repeat(81) }, /InvalidParameterValue/, 400, '81-char name');
  const e = await fails(client, CreateQueueCommand, { QueueName: 'sq-badattr', Attributes: { VisibilityTimeout: '43201' } });
  await expectErr(client, GetQueueUrlCommand, { QueueName: 'sq-badattr' }, 'QueueDoesNotExist', 400, 'not created');
  // Real SQS: InvalidAttributeValue "Invalid value for the parameter VisibilityTimeout."
  errIs(e, 'InvalidAttributeValue', 400, 'VisibilityTimeout 43201');
});

test('GetQueueUrl → the URL; a missing queue → QueueDoesNotExist (AWS.SimpleQueueService.NonExistentQueue)', async function () {
  const out = await ok(client, GetQueueUrlCommand, { QueueName: 'sq-main' });
  eq(out.QueueUrl, S.main, 'QueueUrl');
  const e = await expectErr(client, GetQueueUrlCommand, { QueueName: 'sq-nope' }, 'QueueDoesNotExist', 400);
  eq(e.Code, 'AWS.SimpleQueueService.NonExistentQueue', 'query error code (x-amzn-query-error)');
});

test('ListQueues: QueueNamePrefix, MaxResults and NextToken', async function () {
  const made = [];
  for (const n of ['sq-list-a', 'sq-list-b', 'sq-list-c']) made.push(await mkQueue(n));
  const all = await ok(client, ListQueuesCommand, { QueueNamePrefix: 'sq-list-' });
  eq(sorted(all.QueueUrls || []), made, 'prefix sq-list-');
  check(!all.NextToken, 'no NextToken without MaxResults: ' + all.NextToken);
  const p1 = await ok(client, ListQueuesCommand, { QueueNamePrefix: 'sq-list-', MaxResults: 2 });
  eq((p1.QueueUrls || []).length, 2, 'first page size');
  check(typeof p1.NextToken === 'string' && p1.NextToken.length > 0, 'first page has a NextToken: ' + p1.NextToken);
  const p2 = await ok(client, ListQueuesCommand, { QueueNamePrefix: 'sq-list-', MaxResults: 2, NextToken: p1.NextToken });
  eq((p2.QueueUrls || []).length, 1, 'second page size');
  check(!p2.NextToken, 'last page has no NextToken: ' + p2.NextToken);
  eq(sorted(p1.QueueUrls.concat(p2.QueueUrls)), made, 'both pages together');
  const none = await ok(client, ListQueuesCommand, { QueueNamePrefix: 'sq-nothing-' });
  eq(none.QueueUrls || [], [], 'a prefix nothing matches');
  const every = await ok(client, ListQueuesCommand, {});
  const urls = every.QueueUrls || [];
  check(urls.indexOf(S.main) >= 0 && urls.indexOf(made[0]) >= 0, 'ListQueues without a prefix lists them: ' + JSON.stringify(urls));
  urls.forEach(function (u) {
    check(u.indexOf('http://127.0.0.1:' + port + '/' + DEV + '/') === 0, 'only account ' + DEV + ' queues: ' + u);
  });
});

test('SetQueueAttributes → changed; LastModifiedTimestamp moves; an invalid value → InvalidAttributeValue', async function () {
  const url = await mkQueue('sq-set');
  const before = await attrsOf(url);
  await sleep(1100); // timestamps are whole seconds
  await ok(client, SetQueueAttributesCommand, {
    QueueUrl: url,
    Attributes: { VisibilityTimeout: '20', MessageRetentionPeriod: '7200', DelaySeconds: '2', ReceiveMessageWaitTimeSeconds: '3', MaximumMessageSize: '4096' },
  });
  const a = await attrsOf(url);
  eq([a.VisibilityTimeout, a.MessageRetentionPeriod, a.DelaySeconds, a.ReceiveMessageWaitTimeSeconds, a.MaximumMessageSize],
    ['20', '7200', '2', '3', '4096'], 'attributes after the change');
  eq(a.CreatedTimestamp, before.CreatedTimestamp, 'CreatedTimestamp unchanged');
  check(Number(a.LastModifiedTimestamp) > Number(before.LastModifiedTimestamp),
    'LastModifiedTimestamp moved on: ' + before.LastModifiedTimestamp + ' → ' + a.LastModifiedTimestamp);
  const e1 = await fails(client, SetQueueAttributesCommand, { QueueUrl: url, Attributes: { VisibilityTimeout: '43201' } });
  const e2 = await fails(client, SetQueueAttributesCommand, { QueueUrl: url, Attributes: { DelaySeconds: '901' } });
  eq((await attrsOf(url, ['VisibilityTimeout', 'DelaySeconds'])), { DelaySeconds: '2', VisibilityTimeout: '20' },
    'unchanged after the refusals');
  // Real SQS: InvalidAttributeValue "Invalid value for the parameter <Name>."
  errIs(e1, 'InvalidAttributeValue', 400, 'VisibilityTimeout 43201');
  errIs(e2, 'InvalidAttributeValue', 400, 'DelaySeconds 901');
});

// -- messages --

test('SendMessage → decimal MessageId, MD5OfMessageBody; no MD5OfMessageAttributes without attributes', async function () {
  const out = await ok(client, SendMessageCommand, { QueueUrl: need(S.main, 'sq-main'), MessageBody: 'hello sqs' });
  check(isId(out.MessageId), 'MessageId is the decimal IronMQ id: ' + JSON.stringify(out.MessageId));
  eq(out.MD5OfMessageBody, md5('hello sqs'), 'MD5OfMessageBody');
  eq(out.MD5OfMessageAttributes, undefined, 'MD5OfMessageAttributes');
  eq(await counts(S.main), ['1', '0', '0'], 'counts (visible, not visible, delayed)');
  S.sent1 = out.MessageId;
});

test('ReceiveMessage → Body, MessageId, ReceiptHandle, MD5OfBody; in flight while received', async function () {
  need(S.sent1, 'the SendMessage check');
  const out = await ok(client, ReceiveMessageCommand, { QueueUrl: S.main });
  const m = msgs(out);
  eq(m.length, 1, 'one message');
  eq([m[0].MessageId, m[0].Body, m[0].MD5OfBody], [S.sent1, 'hello sqs', md5('hello sqs')], 'message');
  check(typeof m[0].ReceiptHandle === 'string' && m[0].ReceiptHandle.length > 0, 'ReceiptHandle');
  check(m[0].MessageAttributes === undefined, 'no MessageAttributes when none were asked for');
  eq(await counts(S.main), ['0', '1', '0'], 'counts while in flight');
  eq(msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: S.main })), [], 'not received twice while in flight');
  S.r1 = m[0];
});

test('DeleteMessage with the receipt handle → gone', async function () {
  const out = await ok(client, DeleteMessageCommand, { QueueUrl: S.main, ReceiptHandle: need(S.r1, 'the ReceiveMessage check').ReceiptHandle });
  eq(out.$metadata.httpStatusCode, 200, 'status');
  eq(await counts(S.main), ['0', '0', '0'], 'counts after the delete');
});

test('a UTF-8 body (non-ASCII, astral plane) round-trips with matching MD5s', async function () {
  const body = 'héllo wörld ✓ 𝄞 \t\r\n <xml a="1"/> {"json": true}';
  need(S.main, 'sq-main');
  const out = await ok(client, SendMessageCommand, { QueueUrl: S.main, MessageBody: body });
  eq(out.MD5OfMessageBody, md5(body), 'MD5OfMessageBody');
  const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: S.main }));
  eq(m.length, 1, 'one message');
  eq([m[0].Body, m[0].MD5OfBody], [body, md5(body)], 'body and MD5OfBody');
  await ok(client, DeleteMessageCommand, { QueueUrl: S.main, ReceiptHandle: m[0].ReceiptHandle });
});

const ATTRS = {
  s1: { DataType: 'String', StringValue: 'grüße ✓' },
  n1: { DataType: 'Number', StringValue: '-42.5e3' },
  b1: { DataType: 'Binary', BinaryValue: Uint8Array.from([0, 1, 2, 127, 128, 255]) },
  c1: { DataType: 'String.custom-type', StringValue: 'custom' },
  'grp.a': { DataType: 'String', StringValue: 'A' },
  'grp.b': { DataType: 'Number', StringValue: '7' },
  grpc: { DataType: 'String', StringValue: 'not in grp.*' },
};

test('MessageAttributes String/Number/Binary → MD5OfMessageAttributes; received with All, values and MD5 match', async function () {
  const url = await mkQueue('sq-attrs');
  const sent = await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'with attributes', MessageAttributes: ATTRS });
  eq(sent.MD5OfMessageBody, md5('with attributes'), 'MD5OfMessageBody');
  eq(sent.MD5OfMessageAttributes, md5OfAttributes(ATTRS), 'MD5OfMessageAttributes of SendMessage');
  const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, MessageAttributeNames: ['All'], VisibilityTimeout: 0 }));
  eq(m.length, 1, 'one message');
  eq(attrView(m[0].MessageAttributes), attrView(ATTRS), 'MessageAttributes');
  eq(m[0].MD5OfMessageAttributes, md5OfAttributes(ATTRS), 'MD5OfMessageAttributes of ReceiveMessage');
  check(m[0].MD5OfMessageAttributes === md5OfAttributes(m[0].MessageAttributes), 'the digest matches what was received');
  S.attrsUrl = url;
});

test('ReceiveMessage MessageAttributeNames [names], [prefix.*] → only those; none asked → none', async function () {
  const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: need(S.attrsUrl, 'sq-attrs'), MessageAttributeNames: ['s1', 'b1'], VisibilityTimeout: 0, WaitTimeSeconds: 2 }));
  eq(m.length, 1, 'one message');
  eq(attrView(m[0].MessageAttributes), attrView({ s1: ATTRS.s1, b1: ATTRS.b1 }), 'MessageAttributes');
  if (m[0].MD5OfMessageAttributes !== undefined) {
    // The Java SDK checks the digest against the attributes it received.
    eq(m[0].MD5OfMessageAttributes, md5OfAttributes(m[0].MessageAttributes), 'MD5OfMessageAttributes of the subset');
  }
  const mp = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: S.attrsUrl, MessageAttributeNames: ['grp.*', 'c1'], VisibilityTimeout: 0, WaitTimeSeconds: 2 }));
  eq(mp.length, 1, 'one message');
  // "grp.*": the attributes whose names start with "grp." (SQS's dotted prefixes)
  eq(attrView(mp[0].MessageAttributes), attrView({ 'grp.a': ATTRS['grp.a'], 'grp.b': ATTRS['grp.b'], c1: ATTRS.c1 }),
    'MessageAttributeNames [grp.*, c1]');
  const m2 = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: S.attrsUrl, VisibilityTimeout: 0, WaitTimeSeconds: 2 }));
  eq(m2.length, 1, 'one message');
  check(m2[0].MessageAttributes === undefined || Object.keys(m2[0].MessageAttributes).length === 0,
    'no MessageAttributes when none were asked for: ' + JSON.stringify(m2[0].MessageAttributes, jsonBin));
});

test('system attributes: All → SentTimestamp, ApproximateReceiveCount, SenderId; names → only those', async function () {
  const url = await mkQueue('sq-sysattr');
  const t0 = Date.now();
  await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'sys' });
  const t1 = Date.now();
  let m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, MessageSystemAttributeNames: ['All'], VisibilityTimeout: 0 }));
  eq(m.length, 1, 'one message');
  const a = m[0].Attributes || {};
  check(/^[0-9]+$/.test(a.SentTimestamp || '') && Number(a.SentTimestamp) >= t0 - 2000 && Number(a.SentTimestamp) <= t1 + 2000,
    'SentTimestamp is epoch ms of the send (' + t0 + '..' + t1 + '): ' + a.SentTimestamp);
  eq(a.ApproximateReceiveCount, '1', 'ApproximateReceiveCount');
  check(typeof a.SenderId === 'string' && a.SenderId.length > 0, 'SenderId: ' + JSON.stringify(a.SenderId));
  m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, AttributeNames: ['ApproximateReceiveCount'], VisibilityTimeout: 0, WaitTimeSeconds: 2 }));
  eq(m.length, 1, 'one message');
  eq(m[0].Attributes, { ApproximateReceiveCount: '2' }, 'legacy AttributeNames [ApproximateReceiveCount]');
  m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, MessageSystemAttributeNames: ['SentTimestamp', 'SenderId'], WaitTimeSeconds: 2 }));
  eq(m.length, 1, 'one message');
  eq(sorted(Object.keys(m[0].Attributes || {})), ['SenderId', 'SentTimestamp'], 'MessageSystemAttributeNames [SentTimestamp, SenderId]');
  eq(m[0].Attributes.SentTimestamp, a.SentTimestamp, 'the same SentTimestamp');
  m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: 0 }));
  eq(m.length, 0, 'still in flight from the previous receive (VisibilityTimeout 30)');
});

test('ReceiveMessage VisibilityTimeout 1 → hidden, back after a second with ApproximateReceiveCount 2', async function () {
  await maybeFrozen(visibilityTimeoutOfOneSecond);
});

async function visibilityTimeoutOfOneSecond() {
  const url = await mkQueue('sq-vis');
  const sent = await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'vis' });
  const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: 1 }));
  eq(m.length, 1, 'first receive');
  eq(msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url })), [], 'hidden during the visibility timeout');
  if (virtualClock) await advance(1);
  else await sleep(1300);
  const m2 = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
  eq(m2.length, 1, 'visible again');
  eq([m2[0].MessageId, m2[0].Body, m2[0].Attributes && m2[0].Attributes.ApproximateReceiveCount], [sent.MessageId, 'vis', '2'], 'message');
  check(m2[0].ReceiptHandle !== m[0].ReceiptHandle, 'a new receive gives a new receipt handle');
  await ok(client, DeleteMessageCommand, { QueueUrl: url, ReceiptHandle: m2[0].ReceiptHandle });
}

test('ChangeMessageVisibility 0 → visible at once; the handle stays valid after a change', async function () {
  const url = await mkQueue('sq-cmv');
  await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'cmv' });
  let m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: 60 }));
  eq(m.length, 1, 'received');
  await ok(client, ChangeMessageVisibilityCommand, { QueueUrl: url, ReceiptHandle: m[0].ReceiptHandle, VisibilityTimeout: 0 });
  // Whether the very next receive sees it is the "VisibilityTimeout 0" check's business; here a
  // few milliseconds are allowed.
  const t0 = Date.now();
  m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: 60, WaitTimeSeconds: 2 }));
  const waited = Date.now() - t0;
  eq(m.length, 1, 'received again after ChangeMessageVisibility 0');
  check(waited < 500, 'visible again at once, not after a wait (' + waited + ' ms)');
  const h = m[0].ReceiptHandle;
  await ok(client, ChangeMessageVisibilityCommand, { QueueUrl: url, ReceiptHandle: h, VisibilityTimeout: 120 });
  await ok(client, ChangeMessageVisibilityCommand, { QueueUrl: url, ReceiptHandle: h, VisibilityTimeout: 300 });
  eq(await counts(url), ['0', '1', '0'], 'in flight');
  await expectErr(client, ChangeMessageVisibilityCommand, { QueueUrl: url, ReceiptHandle: h, VisibilityTimeout: 43201 },
    /InvalidParameterValue/, 400, 'VisibilityTimeout 43201');
  await ok(client, DeleteMessageCommand, { QueueUrl: url, ReceiptHandle: h });
  eq(await counts(url), ['0', '0', '0'], 'deleted with the handle after two changes');
});

test('VisibilityTimeout 0 → visible to the very next receive (ReceiveMessage, ChangeMessageVisibility(Batch); 100 rounds each)', async function () {
  // Back-to-back requests, no pauses: a message that a VisibilityTimeout of 0 leaves hidden
  // until some later timer tick shows up here as a receive that finds nothing.
  const url = await mkQueue('sq-vis0');
  await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'zero' });
  const ROUNDS = 100;
  const miss = { ReceiveMessage: 0, ChangeMessageVisibility: 0, ChangeMessageVisibilityBatch: 0 };
  // Receives the message for 60 s: at once (the check), or else within 2 s (the recovery).
  async function receive(vt, wait) {
    const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: vt, WaitTimeSeconds: wait }, 5000));
    return m.length === 1 ? m[0].ReceiptHandle : null;
  }
  async function recover() {
    const h = await receive(60, 2);
    check(h, 'the message came back within 2 s');
    return h;
  }
  let h = await recover();
  for (let i = 0; i < ROUNDS; i++) {
    await ok(client, ChangeMessageVisibilityCommand, { QueueUrl: url, ReceiptHandle: h, VisibilityTimeout: 0 });
    h = await receive(60, 0);
    if (!h) {
      miss.ChangeMessageVisibility++;
      h = await recover();
    }
  }
  for (let i = 0; i < ROUNDS; i++) {
    const b = await ok(client, ChangeMessageVisibilityBatchCommand, { QueueUrl: url, Entries: [{ Id: 'a', ReceiptHandle: h, VisibilityTimeout: 0 }] });
    eq((b.Successful || []).length, 1, 'ChangeMessageVisibilityBatch succeeded');
    h = await receive(60, 0);
    if (!h) {
      miss.ChangeMessageVisibilityBatch++;
      h = await recover();
    }
  }
  await ok(client, ChangeMessageVisibilityCommand, { QueueUrl: url, ReceiptHandle: h, VisibilityTimeout: 0 });
  await receive(0, 2); // the first receive with VisibilityTimeout 0
  for (let i = 0; i < ROUNDS; i++) {
    if (!(await receive(0, 0))) {
      miss.ReceiveMessage++;
      await receive(0, 2);
    }
  }
  const bad = Object.keys(miss).filter(function (k) { return miss[k] > 0; });
  check(bad.length === 0, 'the next receive found nothing after VisibilityTimeout 0 in ' +
    bad.map(function (k) { return k + ' ' + miss[k] + '/' + ROUNDS; }).join(', ') + ' rounds');
});

test('ChangeMessageVisibilityBatch → per-entry Successful / Failed (ReceiptHandleIsInvalid)', async function () {
  const url = await mkQueue('sq-cmvb');
  await ok(client, SendMessageBatchCommand, { QueueUrl: url, Entries: [{ Id: 'a', MessageBody: 'A' }, { Id: 'b', MessageBody: 'B' }] });
  const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
  eq(m.length, 2, 'received both');
  const out = await ok(client, ChangeMessageVisibilityBatchCommand, {
    QueueUrl: url,
    Entries: [
      { Id: 'x', ReceiptHandle: m[0].ReceiptHandle, VisibilityTimeout: 0 },
      { Id: 'y', ReceiptHandle: m[1].ReceiptHandle, VisibilityTimeout: 0 },
      { Id: 'z', ReceiptHandle: 'not-a-receipt-handle', VisibilityTimeout: 0 },
    ],
  });
  eq(sorted((out.Successful || []).map(function (e) { return e.Id; })), ['x', 'y'], 'Successful');
  const f = out.Failed || [];
  eq(f.map(function (e) { return [e.Id, e.Code, e.SenderFault]; }), [['z', 'ReceiptHandleIsInvalid', true]], 'Failed');
  const t0 = Date.now();
  const again = await receiveUntil(client, { QueueUrl: url, MaxNumberOfMessages: 10 }, 2, 2000);
  const waited = Date.now() - t0;
  eq(sorted(again.map(function (x) { return x.Body; })), ['A', 'B'], 'both visible again');
  check(waited < 500, 'visible again at once, not after a wait (' + waited + ' ms)');
  S.cmvb = { url: url, handles: again.map(function (x) { return x.ReceiptHandle; }) };
});

test('DeleteMessageBatch → per-entry Successful / Failed (ReceiptHandleIsInvalid)', async function () {
  need(S.cmvb, 'the ChangeMessageVisibilityBatch check');
  const out = await ok(client, DeleteMessageBatchCommand, {
    QueueUrl: S.cmvb.url,
    Entries: [
      { Id: 'd1', ReceiptHandle: S.cmvb.handles[0] },
      { Id: 'd2', ReceiptHandle: S.cmvb.handles[1] },
      { Id: 'd3', ReceiptHandle: 'garbage' },
    ],
  });
  eq(sorted((out.Successful || []).map(function (e) { return e.Id; })), ['d1', 'd2'], 'Successful');
  eq((out.Failed || []).map(function (e) { return [e.Id, e.Code, e.SenderFault]; }), [['d3', 'ReceiptHandleIsInvalid', true]], 'Failed');
  eq(await counts(S.cmvb.url), ['0', '0', '0'], 'empty');
  await expectErr(client, DeleteMessageBatchCommand, { QueueUrl: S.cmvb.url, Entries: [] }, 'EmptyBatchRequest', 400, 'no entries');
  await expectErr(client, DeleteMessageBatchCommand, { QueueUrl: S.cmvb.url,
    Entries: [{ Id: 'same', ReceiptHandle: 'h1' }, { Id: 'same', ReceiptHandle: 'h2' }] }, 'BatchEntryIdsNotDistinct', 400, 'duplicate Ids');
});

test('SendMessageBatch → MessageIds, MD5s per entry, per-entry DelaySeconds and attributes', async function () {
  await maybeFrozen(sendMessageBatch);
});

async function sendMessageBatch() {
  const url = await mkQueue('sq-batch');
  const entries = [
    { Id: 'e1', MessageBody: 'one' },
    { Id: 'e2', MessageBody: 'two', MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } } },
    { Id: 'e3', MessageBody: 'three', DelaySeconds: 1 },
  ];
  const out = await ok(client, SendMessageBatchCommand, { QueueUrl: url, Entries: entries });
  eq(out.Failed || [], [], 'Failed');
  const ok3 = out.Successful || [];
  eq(sorted(ok3.map(function (e) { return e.Id; })), ['e1', 'e2', 'e3'], 'Successful ids');
  const byId = {};
  ok3.forEach(function (e) { byId[e.Id] = e; });
  entries.forEach(function (e) {
    check(isId(byId[e.Id].MessageId), e.Id + ' MessageId: ' + byId[e.Id].MessageId);
    eq(byId[e.Id].MD5OfMessageBody, md5(e.MessageBody), e.Id + ' MD5OfMessageBody');
  });
  eq(byId.e2.MD5OfMessageAttributes, md5OfAttributes(entries[1].MessageAttributes), 'e2 MD5OfMessageAttributes');
  eq(byId.e1.MD5OfMessageAttributes, undefined, 'e1 has no MD5OfMessageAttributes');
  check(new Set(ok3.map(function (e) { return e.MessageId; })).size === 3, 'distinct MessageIds');
  eq(await counts(url), ['2', '0', '1'], 'counts (visible, not visible, delayed)');
  const got = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
  eq(sorted(got.map(function (m) { return m.MessageId; })), sorted([byId.e1.MessageId, byId.e2.MessageId]), 'the two undelayed');
  const two = got.filter(function (m) { return m.Body === 'two'; })[0];
  eq(two && attrView(two.MessageAttributes), attrView(entries[1].MessageAttributes), 'e2 attributes');
  const poll = watch(ok(client, ReceiveMessageCommand, { QueueUrl: url, WaitTimeSeconds: 5 }, 10000));
  if (virtualClock) {
    await reachServer();
    check(!poll.settled, 'the delayed one is not received before it is due');
    await advance(1);
  }
  const late = msgs(await poll.promise);
  eq(late.map(function (m) { return [m.MessageId, m.Body]; }), [[byId.e3.MessageId, 'three']], 'the delayed one, once due');
}

test('SendMessageBatch with one invalid entry (DelaySeconds 901) → that entry in Failed, the rest sent', async function () {
  const url = await mkQueue('sq-batch-partial');
  const out = await ok(client, SendMessageBatchCommand, {
    QueueUrl: url,
    Entries: [{ Id: 'good', MessageBody: 'fine' }, { Id: 'bad', MessageBody: 'too late', DelaySeconds: 901 }],
  });
  eq((out.Successful || []).map(function (e) { return e.Id; }), ['good'], 'Successful');
  const f = out.Failed || [];
  eq(f.map(function (e) { return [e.Id, e.SenderFault]; }), [['bad', true]], 'Failed');
  check(typeof f[0].Code === 'string' && f[0].Code.length > 0, 'Failed entry has a Code: ' + JSON.stringify(f[0]));
  eq(await counts(url), ['1', '0', '0'], 'only the good entry was sent');
});

test('SendMessageBatch errors: 11 entries, duplicate Ids, no entries → whole request refused, nothing sent', async function () {
  const url = await mkQueue('sq-batch-err');
  const eleven = [];
  for (let i = 0; i < 11; i++) eleven.push({ Id: 'm' + i, MessageBody: 'b' + i });
  await expectErr(client, SendMessageBatchCommand, { QueueUrl: url, Entries: eleven }, 'TooManyEntriesInBatchRequest', 400, '11 entries');
  await expectErr(client, SendMessageBatchCommand, { QueueUrl: url, Entries: [{ Id: 'a', MessageBody: '1' }, { Id: 'a', MessageBody: '2' }] },
    'BatchEntryIdsNotDistinct', 400, 'duplicate Ids');
  await expectErr(client, SendMessageBatchCommand, { QueueUrl: url, Entries: [] }, 'EmptyBatchRequest', 400, 'no entries');
  eq(await counts(url), ['0', '0', '0'], 'nothing sent');
});

test('SendMessageBatch of 10; ReceiveMessage MaxNumberOfMessages: 10 of 12; default 1; 0 and 11 refused', async function () {
  const url = await mkQueue('sq-max');
  for (const size of [10, 2]) { // 10: the most a batch may hold
    const entries = [];
    for (let i = 0; i < size; i++) entries.push({ Id: 'i' + i, MessageBody: 'm' + size + '-' + i });
    const out = await ok(client, SendMessageBatchCommand, { QueueUrl: url, Entries: entries });
    eq([(out.Successful || []).length, (out.Failed || []).length], [size, 0], 'a batch of ' + size + ': Successful, Failed');
  }
  const ten = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, MaxNumberOfMessages: 10 }));
  eq(ten.length, 10, 'MaxNumberOfMessages 10');
  eq(new Set(ten.map(function (m) { return m.MessageId; })).size, 10, 'distinct messages');
  const one = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url }));
  eq(one.length, 1, 'default MaxNumberOfMessages is 1');
  await expectErr(client, ReceiveMessageCommand, { QueueUrl: url, MaxNumberOfMessages: 11 }, /InvalidParameterValue/, 400, 'MaxNumberOfMessages 11');
  await expectErr(client, ReceiveMessageCommand, { QueueUrl: url, MaxNumberOfMessages: 0 }, /InvalidParameterValue/, 400, 'MaxNumberOfMessages 0');
  await expectErr(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: 43201 }, /InvalidParameterValue/, 400, 'VisibilityTimeout 43201');
  await expectErr(client, ReceiveMessageCommand, { QueueUrl: url, WaitTimeSeconds: 21 }, /InvalidParameterValue/, 400, 'WaitTimeSeconds 21');
  eq(await counts(url), ['1', '11', '0'], 'counts (visible, not visible, delayed)');
});

// -- long polling and delays --

test('long poll: WaitTimeSeconds 5 is woken by a send 300 ms later', async function () {
  const url = await mkQueue('sq-poll');
  const t0 = Date.now();
  const pending = ok(client, ReceiveMessageCommand, { QueueUrl: url, WaitTimeSeconds: 5 }, 10000).then(
    function (v) { return { v: v }; },
    function (e) { return { e: e }; }
  );
  await sleep(300);
  const sent = await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'wake up' });
  const got = await pending;
  if (got.e) throw got.e;
  const m = msgs(got.v);
  const waited = Date.now() - t0;
  eq(m.map(function (x) { return [x.MessageId, x.Body]; }), [[sent.MessageId, 'wake up']], 'the sent message');
  check(waited >= 250 && waited < 2500, 'answered soon after the send, not at the end of the wait (' + waited + ' ms)');
  S.pollUrl = url;
});

test('long poll: an empty queue answers no messages after about WaitTimeSeconds 1', async function () {
  await maybeFrozen(async function (clock0) {
    const t0 = Date.now();
    const poll = watch(ok(client, ReceiveMessageCommand, { QueueUrl: need(S.pollUrl, 'sq-poll'), WaitTimeSeconds: 1 }, 6000));
    if (virtualClock) {
      await reachServer();
      check(!poll.settled, 'the long poll waits while the clock stands still');
      eq((await advance(1)).now_ms - clock0, 1000, 'clock moved 1 s');
    }
    const m = msgs(await poll.promise);
    const waited = Date.now() - t0;
    eq(m, [], 'no messages');
    if (!virtualClock) check(waited >= 900 && waited < 3000, 'waited about 1 s (' + waited + ' ms)');
  });
});

test('ReceiveMessageWaitTimeSeconds is the default wait; WaitTimeSeconds 0 overrides it', async function () {
  const url = await mkQueue('sq-pollattr', { ReceiveMessageWaitTimeSeconds: '1' });
  let t0 = Date.now();
  let waited = 0;
  await maybeFrozen(async function () {
    const poll = watch(ok(client, ReceiveMessageCommand, { QueueUrl: url }, 6000));
    if (virtualClock) {
      await reachServer();
      check(!poll.settled, 'the receive waits (the queue default) while the clock stands still');
      await advance(1);
    }
    eq(msgs(await poll.promise), [], 'no messages');
    waited = Date.now() - t0;
    if (!virtualClock) check(waited >= 900 && waited < 3000, 'waited the queue default of 1 s (' + waited + ' ms)');
  });
  t0 = Date.now();
  eq(msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, WaitTimeSeconds: 0 })), [], 'no messages');
  waited = Date.now() - t0;
  check(waited < 700, 'WaitTimeSeconds 0 answers at once (' + waited + ' ms)');
});

test('SendMessage DelaySeconds 1 → delayed, then received; queue DelaySeconds applies by default', async function () {
  const url = await mkQueue('sq-delay');
  await maybeFrozen(async function () {
    const t0 = Date.now();
    const sent = await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'later', DelaySeconds: 1 });
    eq(await counts(url), ['0', '0', '1'], 'counts while delayed');
    eq(msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url })), [], 'not receivable yet');
    const poll = watch(ok(client, ReceiveMessageCommand, { QueueUrl: url, WaitTimeSeconds: 5 }, 10000));
    if (virtualClock) {
      await reachServer();
      check(!poll.settled, 'not received before it is due');
      await advance(1);
    }
    const m = msgs(await poll.promise);
    const waited = Date.now() - t0;
    eq(m.map(function (x) { return x.MessageId; }), [sent.MessageId], 'received once due');
    if (!virtualClock) check(waited >= 800 && waited < 3500, 'after about 1 s (' + waited + ' ms)');
  });
  await expectErr(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'x', DelaySeconds: 901 }, /InvalidParameterValue/, 400, 'DelaySeconds 901');
  const qd = await mkQueue('sq-delay-q', { DelaySeconds: '1' });
  await ok(client, SendMessageCommand, { QueueUrl: qd, MessageBody: 'queue delay' });
  eq(await counts(qd), ['0', '0', '1'], 'queue DelaySeconds 1: delayed');
  await ok(client, SendMessageCommand, { QueueUrl: qd, MessageBody: 'no delay', DelaySeconds: 0 });
  eq(await counts(qd), ['1', '0', '1'], 'DelaySeconds 0 on the message overrides the queue');
});

test('PurgeQueue → visible, in-flight and delayed messages all gone', async function () {
  const url = await mkQueue('sq-purge');
  await ok(client, SendMessageBatchCommand, { QueueUrl: url, Entries: [
    { Id: 'a', MessageBody: 'a' }, { Id: 'b', MessageBody: 'b' }, { Id: 'c', MessageBody: 'c', DelaySeconds: 60 },
  ] });
  await ok(client, ReceiveMessageCommand, { QueueUrl: url });
  eq(await counts(url), ['1', '1', '1'], 'before');
  await ok(client, PurgeQueueCommand, { QueueUrl: url });
  eq(await counts(url), ['0', '0', '0'], 'after');
  eq(msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url })), [], 'nothing to receive');
});

// -- dead letters --

test('RedrivePolicy: stored and answered; after maxReceiveCount receives the next receive moves it to the DLQ', async function () {
  const dlq = await mkQueue('sq-dlq');
  const arn = (await attrsOf(dlq, ['QueueArn'])).QueueArn;
  eq(arn, 'arn:aws:sqs:us-east-1:' + DEV + ':sq-dlq', 'DLQ QueueArn');
  const policy = JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: '2' });
  const src = await mkQueue('sq-src', { RedrivePolicy: policy });
  const rp = (await attrsOf(src, ['RedrivePolicy'])).RedrivePolicy;
  check(typeof rp === 'string', 'RedrivePolicy answered: ' + rp);
  const p = JSON.parse(rp);
  eq([p.deadLetterTargetArn, String(p.maxReceiveCount)], [arn, '2'], 'RedrivePolicy');
  const sent = await ok(client, SendMessageCommand, { QueueUrl: src, MessageBody: 'poison' });
  for (let i = 1; i <= 2; i++) {
    // WaitTimeSeconds: robust to a message that a VisibilityTimeout 0 leaves hidden for a tick.
    const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: src, VisibilityTimeout: 0, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
    eq(m.map(function (x) { return [x.MessageId, x.Attributes && x.Attributes.ApproximateReceiveCount]; }), [[sent.MessageId, String(i)]], 'receive ' + i);
  }
  await maybeFrozen(async function () {
    const poll = watch(ok(client, ReceiveMessageCommand, { QueueUrl: src, WaitTimeSeconds: 1 }));
    if (virtualClock) {
      await reachServer();
      await advance(1);
    }
    eq(msgs(await poll.promise), [], 'receive 3: moved instead of handed out');
  });
  eq(await counts(src), ['0', '0', '0'], 'source queue empty');
  const d = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: dlq }));
  eq(d.map(function (x) { return [x.MessageId, x.Body, x.MD5OfBody]; }), [[sent.MessageId, 'poison', md5('poison')]], 'in the DLQ');
  await ok(client, DeleteMessageCommand, { QueueUrl: dlq, ReceiptHandle: d[0].ReceiptHandle });
});

test('SetQueueAttributes RedrivePolicy on an existing queue → answered by GetQueueAttributes', async function () {
  const url = await mkQueue('sq-src2');
  const arn = 'arn:aws:sqs:us-east-1:' + DEV + ':sq-dlq';
  await ok(client, SetQueueAttributesCommand, { QueueUrl: url, Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: 5 }) } });
  const p = JSON.parse((await attrsOf(url, ['RedrivePolicy'])).RedrivePolicy || 'null');
  eq(p && [p.deadLetterTargetArn, String(p.maxReceiveCount)], [arn, '5'], 'RedrivePolicy');
});

test('a stale receipt handle (message received again) → DeleteMessage succeeds without deleting', async function () {
  // As in SQS: only the latest receive's handle deletes.
  const url = await mkQueue('sq-stale');
  const sent = await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'stale' });
  const first = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: 0 }));
  eq(first.length, 1, 'first receive');
  const second = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: 60, WaitTimeSeconds: 2 }));
  eq(second.map(function (m) { return m.MessageId; }), [sent.MessageId], 'second receive');
  await ok(client, DeleteMessageCommand, { QueueUrl: url, ReceiptHandle: first[0].ReceiptHandle });
  eq(await counts(url), ['0', '1', '0'], 'still there, in flight, after a delete with the stale handle');
  await ok(client, DeleteMessageCommand, { QueueUrl: url, ReceiptHandle: second[0].ReceiptHandle });
  eq(await counts(url), ['0', '0', '0'], 'gone after a delete with the current handle');
});

test('ChangeMessageVisibility of a message no longer in flight → MessageNotInflight', async function () {
  const url = await mkQueue('sq-notinflight');
  await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'x' });
  const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, VisibilityTimeout: 60 }));
  eq(m.length, 1, 'received');
  await ok(client, ChangeMessageVisibilityCommand, { QueueUrl: url, ReceiptHandle: m[0].ReceiptHandle, VisibilityTimeout: 0 });
  const e = await expectErr(client, ChangeMessageVisibilityCommand, { QueueUrl: url, ReceiptHandle: m[0].ReceiptHandle, VisibilityTimeout: 30 },
    'MessageNotInflight', 400);
  eq(e.Code, 'AWS.SimpleQueueService.MessageNotInflight', 'query error code');
});

test('TagQueue, ListQueueTags, UntagQueue', async function () {
  const url = await mkQueue('sq-tags');
  eq((await ok(client, ListQueueTagsCommand, { QueueUrl: url })).Tags || {}, {}, 'no tags at first');
  await ok(client, TagQueueCommand, { QueueUrl: url, Tags: { team: 'core', env: 'test' } });
  eq((await ok(client, ListQueueTagsCommand, { QueueUrl: url })).Tags, { env: 'test', team: 'core' }, 'after TagQueue');
  await ok(client, UntagQueueCommand, { QueueUrl: url, TagKeys: ['env'] });
  eq((await ok(client, ListQueueTagsCommand, { QueueUrl: url })).Tags, { team: 'core' }, 'after UntagQueue');
});

test('GetQueueUrl with QueueOwnerAWSAccountId → that account\'s queue', async function () {
  const kc = mkClient(port, 'ownerproj:any');
  try {
    const url = await mkQueue('sq-owned', null, kc);
    const out = await ok(client, GetQueueUrlCommand, { QueueName: 'sq-owned', QueueOwnerAWSAccountId: 'ownerproj' });
    eq(out.QueueUrl, url, 'QueueUrl');
  } finally {
    kc.destroy();
  }
});

test('FIFO queues and AddPermission are refused (InvalidParameterValue, UnsupportedOperation)', async function () {
  await expectErr(client, CreateQueueCommand, { QueueName: 'sq-fifo.fifo', Attributes: { FifoQueue: 'true' } },
    /InvalidParameterValue/, 400, 'CreateQueue of a FIFO queue');
  await expectErr(client, AddPermissionCommand,
    { QueueUrl: need(S.main, 'sq-main'), Label: 'l', AWSAccountIds: ['111122223333'], Actions: ['SendMessage'] },
    'UnsupportedOperation', 400, 'AddPermission');
});

// -- errors --

test('SendMessage / ReceiveMessage to a missing queue → QueueDoesNotExist; no queue created', async function () {
  const url = qurl('sq-missing');
  const e = await expectErr(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'x' }, 'QueueDoesNotExist', 400, 'SendMessage');
  eq(e.Code, 'AWS.SimpleQueueService.NonExistentQueue', 'query error code');
  await expectErr(client, ReceiveMessageCommand, { QueueUrl: url }, 'QueueDoesNotExist', 400, 'ReceiveMessage');
  await expectErr(client, SendMessageBatchCommand, { QueueUrl: url, Entries: [{ Id: 'a', MessageBody: 'x' }] }, 'QueueDoesNotExist', 400, 'SendMessageBatch');
  await expectErr(client, GetQueueAttributesCommand, { QueueUrl: url, AttributeNames: ['All'] }, 'QueueDoesNotExist', 400, 'GetQueueAttributes');
  await expectErr(client, PurgeQueueCommand, { QueueUrl: url }, 'QueueDoesNotExist', 400, 'PurgeQueue');
  await expectErr(client, GetQueueUrlCommand, { QueueName: 'sq-missing' }, 'QueueDoesNotExist', 400, 'GetQueueUrl after the send');
  const r = await v3(port, 'GET', '/' + DEV + '/queues/sq-missing');
  eq(r.status, 404, 'v3 GET of the queue');
});

test('a queue URL of another account → QueueDoesNotExist (accounts are separate)', async function () {
  await expectErr(client, GetQueueAttributesCommand, { QueueUrl: qurl('sq-main', 'otheracct'), AttributeNames: ['All'] },
    'QueueDoesNotExist', 400);
});

test('a malformed receipt handle → ReceiptHandleIsInvalid (DeleteMessage, ChangeMessageVisibility)', async function () {
  // The SQS model gives ReceiptHandleIsInvalid HTTP 404; 400 is accepted as well.
  await expectErr(client, DeleteMessageCommand, { QueueUrl: need(S.main, 'sq-main'), ReceiptHandle: 'this is not a receipt handle' },
    'ReceiptHandleIsInvalid', [400, 404], 'DeleteMessage');
  await expectErr(client, ChangeMessageVisibilityCommand, { QueueUrl: S.main, ReceiptHandle: 'garbage', VisibilityTimeout: 10 },
    'ReceiptHandleIsInvalid', [400, 404], 'ChangeMessageVisibility');
});

test('SendMessage with an empty body → 400, nothing sent', async function () {
  const url = await mkQueue('sq-empty-body');
  const e = await fails(client, SendMessageCommand, { QueueUrl: url, MessageBody: '' });
  eq(e.$metadata.httpStatusCode, 400, 'status (' + describeErr(e) + ')');
  eq(await counts(url), ['0', '0', '0'], 'nothing sent');
});

test('SendMessage above the queue MaximumMessageSize → 400, nothing sent', async function () {
  const url = await mkQueue('sq-small', { MaximumMessageSize: '1024' });
  await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'y'.repeat(1024) });
  const e = await fails(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'y'.repeat(1025) });
  eq(e.$metadata.httpStatusCode, 400, 'status (' + describeErr(e) + ')');
  eq(await counts(url), ['1', '0', '0'], 'only the 1024-byte message was sent');
});

// -- the access key's project --

test('dev mode: access key <project>:<token> → the account is <project>', async function () {
  const kc = mkClient(port, 'devproj:whatever');
  try {
    const url = await mkQueue('sq-keyed', null, kc);
    eq(url, qurl('sq-keyed', 'devproj'), 'QueueUrl');
    eq((await ok(kc, GetQueueUrlCommand, { QueueName: 'sq-keyed' })).QueueUrl, url, 'GetQueueUrl');
    eq((await ok(kc, ListQueuesCommand, {})).QueueUrls, [url], 'ListQueues lists the project\'s queues only');
    eq((await attrsOf(url, ['QueueArn'], kc)).QueueArn, 'arn:aws:sqs:us-east-1:devproj:sq-keyed', 'QueueArn');
    await expectErr(client, GetQueueUrlCommand, { QueueName: 'sq-keyed' }, 'QueueDoesNotExist', 400, 'not in account ' + DEV);
    const r = await v3(port, 'GET', '/devproj/queues/sq-keyed');
    eq([r.status, r.json && r.json.queue && r.json.queue.name], [200, 'sq-keyed'], 'v3 sees it in project devproj');
  } finally {
    kc.destroy();
  }
});

// -- the same queues through the IronMQ v3 API --

test('cross-API: posted with v3 → received with the SDK → deleted by receipt handle → v3 shows it gone', async function () {
  const p = await v3(port, 'POST', '/xapi/queues/sq-x/messages', { messages: [{ body: 'from v3' }] });
  eq(p.status, 201, 'v3 post status');
  const id = p.json && p.json.ids && p.json.ids[0];
  check(isId(id), 'v3 id: ' + p.text);
  const url = qurl('sq-x', 'xapi');
  const m = msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
  eq(m.map(function (x) { return [x.MessageId, x.Body, x.MD5OfBody]; }), [[id, 'from v3', md5('from v3')]], 'received');
  const r = await v3(port, 'POST', '/xapi/queues/sq-x/reservations', { n: 1 });
  eq([r.status, r.json && r.json.messages], [200, []], 'v3 cannot reserve it while the SDK holds it');
  await ok(client, DeleteMessageCommand, { QueueUrl: url, ReceiptHandle: m[0].ReceiptHandle });
  const q = await v3(port, 'GET', '/xapi/queues/sq-x');
  eq([q.status, q.json && q.json.queue && q.json.queue.size], [200, 0], 'v3 queue size');
  const g = await v3(port, 'GET', '/xapi/queues/sq-x/messages/' + id);
  eq(g.status, 404, 'v3 GET of the deleted message');
});

test('cross-API: sent with the SDK → reserved and deleted with v3 → SDK counts zero', async function () {
  const url = await mkQueue('sq-y');
  const sent = await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'from sqs' });
  const info = await v3(port, 'GET', '/' + DEV + '/queues/sq-y');
  eq([info.status, info.json && info.json.queue && info.json.queue.name, info.json && info.json.queue && info.json.queue.size],
    [200, 'sq-y', 1], 'v3 GET of the SQS queue');
  const r = await v3(port, 'POST', '/' + DEV + '/queues/sq-y/reservations', { n: 1 });
  const m = (r.json && r.json.messages) || [];
  eq([r.status, m.length, m[0] && m[0].id, m[0] && m[0].body], [200, 1, sent.MessageId, 'from sqs'], 'v3 reserve');
  eq(await counts(url), ['0', '1', '0'], 'SDK sees it in flight');
  eq(msgs(await ok(client, ReceiveMessageCommand, { QueueUrl: url })), [], 'SDK cannot receive it while v3 holds it');
  const d = await v3(port, 'DELETE', '/' + DEV + '/queues/sq-y/messages/' + m[0].id, { reservation_id: m[0].reservation_id });
  eq([d.status, d.json && d.json.msg], [200, 'Deleted'], 'v3 delete');
  eq(await counts(url), ['0', '0', '0'], 'SDK counts after the v3 delete');
});

// -- deleting queues --

test('DeleteQueue → gone for GetQueueUrl, ListQueues, send and v3; again → QueueDoesNotExist', async function () {
  const url = await mkQueue('sq-doomed');
  await ok(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'bye' });
  await ok(client, DeleteQueueCommand, { QueueUrl: url });
  await expectErr(client, GetQueueUrlCommand, { QueueName: 'sq-doomed' }, 'QueueDoesNotExist', 400, 'GetQueueUrl');
  const l = await ok(client, ListQueuesCommand, { QueueNamePrefix: 'sq-doomed' });
  eq(l.QueueUrls || [], [], 'ListQueues');
  await expectErr(client, SendMessageCommand, { QueueUrl: url, MessageBody: 'x' }, 'QueueDoesNotExist', 400, 'SendMessage');
  eq((await v3(port, 'GET', '/' + DEV + '/queues/sq-doomed')).status, 404, 'v3 GET');
  await expectErr(client, DeleteQueueCommand, { QueueUrl: url }, 'QueueDoesNotExist', 400, 'DeleteQueue again');
});

// -- a server with tokens: --token secret1:projA --

let tokClient = null;
test('tokens: key projA:secret1 → account projA; send, v3 with the token sees it, receive, delete', async function () {
  need(tokClient, 'the token server');
  const url = await mkQueue('sq-tok', null, tokClient);
  eq(url, 'http://127.0.0.1:' + tokPort + '/projA/sq-tok', 'QueueUrl');
  eq((await ok(tokClient, ListQueuesCommand, {})).QueueUrls, [url], 'ListQueues');
  const sent = await ok(tokClient, SendMessageCommand, { QueueUrl: url, MessageBody: 'secret' });
  const info = await v3(tokPort, 'GET', '/projA/queues/sq-tok', undefined, 'secret1');
  eq([info.status, info.json && info.json.queue && info.json.queue.size], [200, 1], 'v3 GET with the token');
  const m = msgs(await ok(tokClient, ReceiveMessageCommand, { QueueUrl: url }));
  eq(m.map(function (x) { return [x.MessageId, x.Body]; }), [[sent.MessageId, 'secret']], 'received');
  await ok(tokClient, DeleteMessageCommand, { QueueUrl: url, ReceiptHandle: m[0].ReceiptHandle });
  eq((await attrsOf(url, ['ApproximateNumberOfMessages', 'QueueArn'], tokClient)),
    { ApproximateNumberOfMessages: '0', QueueArn: 'arn:aws:sqs:us-east-1:projA:sq-tok' }, 'attributes');
});

test('tokens: key projA:secret1 with a queue URL of another account → AccessDenied', async function () {
  need(tokClient, 'the token server');
  await expectErr(tokClient, SendMessageCommand, { QueueUrl: 'http://127.0.0.1:' + tokPort + '/projB/sq-tok', MessageBody: 'x' },
    /^AccessDenied/, 403, 'SendMessage');
});

test('tokens: key projA:<wrong token> → InvalidClientTokenId (403), nothing done', async function () {
  const bad = mkClient(need(tokClient, 'the token server') && tokPort, 'projA:wrong');
  try {
    const url = 'http://127.0.0.1:' + tokPort + '/projA/sq-tok';
    await expectErr(bad, ListQueuesCommand, {}, 'InvalidClientTokenId', 403, 'ListQueues');
    await expectErr(bad, SendMessageCommand, { QueueUrl: url, MessageBody: 'intruder' }, 'InvalidClientTokenId', 403, 'SendMessage');
    await expectErr(bad, CreateQueueCommand, { QueueName: 'sq-intruder' }, 'InvalidClientTokenId', 403, 'CreateQueue');
    eq((await attrsOf(url, ['ApproximateNumberOfMessages'], tokClient)).ApproximateNumberOfMessages, '0', 'nothing sent');
    await expectErr(tokClient, GetQueueUrlCommand, { QueueName: 'sq-intruder' }, 'QueueDoesNotExist', 400, 'nothing created');
  } finally {
    bad.destroy();
  }
});

test('tokens: a key without a token → InvalidClientTokenId (403)', async function () {
  // Inferred: with tokens configured only <project>:<token> keys can be checked.
  const bad = mkClient(need(tokClient, 'the token server') && tokPort, 'AKIAIOSFODNN7EXAMPLE');
  try {
    await expectErr(bad, ListQueuesCommand, {}, 'InvalidClientTokenId', 403, 'ListQueues');
    await expectErr(bad, SendMessageCommand, { QueueUrl: 'http://127.0.0.1:' + tokPort + '/projA/sq-tok', MessageBody: 'x' },
      'InvalidClientTokenId', 403, 'SendMessage');
  } finally {
    bad.destroy();
  }
});

test('tokens: a good token for another project (projB:secret1) → 403', async function () {
  const other = mkClient(need(tokClient, 'the token server') && tokPort, 'projB:secret1');
  try {
    const e = await fails(other, CreateQueueCommand, { QueueName: 'sq-b' });
    errIs(e, /^(AccessDenied|AccessDeniedException|InvalidClientTokenId)$/, 403, 'CreateQueue in projB');
    const r = await v3(tokPort, 'GET', '/projB/queues/sq-b', undefined, 'secret1');
    eq(r.status, 403, 'v3 agrees the token has no access to projB');
  } finally {
    other.destroy();
  }
});

test('both servers are still running (neither crashed during the checks)', async function () {
  servers.forEach(function (s) {
    check(!s.exited, 'the ' + s.name + ' server exited during the run: ' +
      s.log.split('\n').filter(Boolean).slice(-1)[0]);
  });
});

// ---- main ----

async function main() {
  try {
    port = await startServer('dev');
  } catch (e) {
    fail('start anvil', e.message);
    finish();
    return;
  }
  client = mkClient(port, 'AKIDDEVEXAMPLE');
  // The virtual clock: test mode is on in dev mode; the PostgreSQL back end keeps real time.
  try {
    const st = await adminCall('GET', '');
    virtualClock = st.status === 200 && st.json && st.json.backend === 'embedded';
  } catch (e) {
    virtualClock = false;
  }
  console.log('# clock: ' + (virtualClock ? 'virtual (the test kit freezes and advances it)' : 'real time'));
  try {
    tokPort = await startServer('token', ['--token', 'secret1:projA']);
    tokClient = mkClient(tokPort, 'projA:secret1');
  } catch (e) {
    fail('start anvil --token secret1:projA', e.message);
  }
  for (const t of tests) {
    if (finished) return;
    try {
      await t.fn();
      if (finished) return; // stopped while the test ran: its outcome no longer counts
      passed++;
      console.log('ok   ' + t.name);
    } catch (e) {
      if (finished) return;
      fail(t.name, (e && e.message) || e);
    }
  }
  if (client) client.destroy();
  if (tokClient) tokClient.destroy();
  clearTimeout(globalTimer);
  finish();
}

main();
