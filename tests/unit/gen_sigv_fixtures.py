#!/usr/bin/python3
"""tests/unit/gen_sigv_fixtures.py — prints the C fixtures of tests/unit/test_sigv.c: SQS
requests signed by the real client libraries, frozen at a fixed time, as they would reach
the server (method, path, raw query, headers, body).

    /usr/bin/python3 tests/unit/gen_sigv_fixtures.py > /tmp/fixtures.c
    /usr/bin/python3 tests/unit/gen_sigv_fixtures.py --aws-suite AWS_C_AUTH_CHECKOUT > /tmp/aws.c

Needs Debian's python3-botocore (1.29) and python3-boto (2.49). With SIGV_JS_DIR set to a
directory holding node_modules/@smithy/signature-v4 and @aws-crypto/sha256-js (npm install
@smithy/signature-v4 @aws-crypto/sha256-js), it also prints requests signed by the AWS SDK
for JavaScript v3's signer. Paste the output between the "generated" markers of test_sigv.c.
With --aws-suite and a checkout of awslabs/aws-c-auth, it prints instead the fixtures of
AWS's SigV4 test suite (its tests/aws-signing-test-suite/v4), the first block of test_sigv.c.

Nothing here talks to a network: the botocore client's request is caught at 'before-send',
boto 2's at _mexe, before anything is sent.
"""
import calendar
import datetime as real_datetime
import json
import os
import subprocess
import sys
import textwrap
import time
import types
from urllib.parse import urlsplit

import boto
import boto.auth
import boto.connection
import boto.sqs.connection
import boto.utils
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session

NOW = real_datetime.datetime(2024, 5, 1, 10, 20, 30)  # UTC
NOW_S = calendar.timegm(NOW.timetuple())
SECRET = 'anvil/Secret+Key=0123456789abcdefEXAMPLE'
AKID = 'AKIDANVILEXAMPLE'
PROJ_KEY = 'p1:7f3a9c2e41b84d0c'  # anvil's project:token form of an access key id
HOST = 'localhost:8080'


# ---- frozen clocks -------------------------------------------------------------------

class _FrozenDatetime(real_datetime.datetime):
    @classmethod
    def utcnow(cls):
        return NOW

    @classmethod
    def now(cls, tz=None):
        return NOW if tz is None else NOW.replace(tzinfo=real_datetime.timezone.utc)


_frozen_module = types.SimpleNamespace(datetime=_FrozenDatetime, timedelta=real_datetime.timedelta)
botocore.auth.datetime = _frozen_module
boto.auth.datetime = _frozen_module
boto.utils.get_ts = lambda ts=None: NOW.strftime('%Y-%m-%dT%H:%M:%SZ')


# ---- C output ------------------------------------------------------------------------

def c_string(data, width=64):
    """A C string literal for data (bytes or text), split into pieces of at most width
    characters, never inside an escape."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    tokens = []
    for b in data:
        c = chr(b)
        if c in '"\\':
            tokens.append('\\' + c)
        elif c == '\n':
            tokens.append('\\n')
        elif 0x20 <= b < 0x7f and c != '?':  # '?' escaped: no trigraphs
            tokens.append(c)
        else:
            tokens.append('\\%03o' % b)
    lines, cur = [], ''
    for t in tokens:
        if len(cur) + len(t) > width:
            lines.append(cur)
            cur = ''
        cur += t
    lines.append(cur)
    return '\n        '.join('"%s"' % line for line in lines)


def emit(name, comment, method, url_path, query, headers, body, secret=SECRET, now_s=NOW_S):
    if isinstance(body, str):
        body = body.encode('utf-8')
    body = body or b''
    print('/* %s */' % textwrap.fill(comment, 92, subsequent_indent=' * '))
    print('static const struct fixture %s = {' % name)
    print('    .name = "%s",' % name)
    print('    .method = "%s",' % method)
    print('    .path = %s,' % c_string(url_path))
    print('    .query = %s,' % c_string(query))
    print('    .headers = {')
    for k, v in headers:
        print('        {%s, %s},' % (c_string(k), c_string(v)))
    print('    },')
    print('    .body = %s,' % c_string(body))
    print('    .body_len = %d,' % len(body))
    print('    .secret = %s,' % c_string(secret))
    print('    .now_s = %d,' % now_s)
    print('};')
    print()


def split_url(url):
    parts = urlsplit(url)
    return parts.path or '/', parts.query


# ---- botocore --------------------------------------------------------------------------

class _Caught(Exception):
    pass


def botocore_client(akid=AKID):
    session = botocore.session.get_session()
    return session.create_client('sqs', region_name='us-east-1',
                                 endpoint_url='http://' + HOST,
                                 aws_access_key_id=akid, aws_secret_access_key=SECRET)


def botocore_capture(client, operation, **kwargs):
    caught = {}

    def before_send(request, **_):
        caught['request'] = request
        raise _Caught()

    client.meta.events.register('before-send.sqs', before_send)
    try:
        getattr(client, operation)(**kwargs)
    except _Caught:
        pass
    return caught['request']


def emit_prepared(name, comment, req, secret=SECRET):
    path, query = split_url(req.url)
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in req.headers.items()]
    headers.insert(0, ('Host', HOST))  # added by the HTTP client (urllib3)
    emit(name, comment, req.method, path, query, headers, req.body, secret)


def botocore_signed(method, url, headers, body=b'', params=None, akid=AKID, service='sqs'):
    creds = botocore.credentials.Credentials(akid, SECRET)
    req = botocore.awsrequest.AWSRequest(method=method, url=url, headers=headers, data=body,
                                         params=params or {})
    botocore.auth.SigV4Auth(creds, service, 'us-east-1').add_auth(req)
    return req.prepare()


def botocore_presigned(method, url, expires=300):
    creds = botocore.credentials.Credentials(AKID, SECRET)
    req = botocore.awsrequest.AWSRequest(method=method, url=url)
    botocore.auth.SigV4QueryAuth(creds, 'sqs', 'us-east-1', expires=expires).add_auth(req)
    return req.prepare()


# ---- boto 2 ------------------------------------------------------------------------------

def boto2_connection(v2=False):
    region = boto.sqs.regioninfo.SQSRegionInfo(name='us-east-1', endpoint='localhost')
    conn = boto.sqs.connection.SQSConnection(AKID, SECRET, is_secure=False, port=8080,
                                             region=region)
    if v2:
        conn._auth_handler = boto.auth.QuerySignatureV2AuthHandler(conn.host, boto.config,
                                                                   conn.provider)
    caught = {}

    def mexe(request, *args, **kwargs):
        request.authorize(connection=conn)
        caught['request'] = request
        raise _Caught()

    conn._mexe = mexe
    return conn, caught


def boto2_capture(v2, action, params, path, verb):
    conn, caught = boto2_connection(v2)
    try:
        conn.make_request(action, params, path, verb)
    except _Caught:
        pass
    req = caught['request']
    # http.client adds Host (with the port) when the request has none.
    headers = [('Host', HOST)] + [(k, v) for k, v in req.headers.items()]
    path, _, query = req.path.partition('?')
    return req, path, query, headers


# ---- the AWS SDK for JavaScript v3 ---------------------------------------------------------

JS_SIGNER = r"""
const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const signer = new SignatureV4({
  credentials: { accessKeyId: input.akid, secretAccessKey: input.secret },
  region: 'us-east-1', service: 'sqs', sha256: Sha256,
});
(async () => {
  const out = [];
  for (const r of input.requests) {
    const signed = await signer.sign(
      { method: r.method, protocol: 'http:', hostname: 'localhost', port: 8080,
        path: r.path, query: r.query, headers: r.headers, body: r.body },
      { signingDate: new Date(input.now_ms) });
    out.push({ headers: signed.headers });
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


def js_requests():
    js_dir = os.environ.get('SIGV_JS_DIR')
    if not js_dir:
        return
    json_body = json.dumps({'QueueUrl': 'http://localhost:8080/123456789012/q1',
                            'MessageBody': 'from node \u00e9\u4e2d', 'DelaySeconds': 0},
                           ensure_ascii=False)
    requests = [
        {'method': 'POST', 'path': '/', 'query': {},
         'headers': {'host': HOST, 'content-type': 'application/x-amz-json-1.0',
                     'x-amz-target': 'AmazonSQS.SendMessage',
                     'content-length': str(len(json_body.encode()))},
         'body': json_body},
        {'method': 'GET', 'path': '/123456789012/q1',
         'query': {'Action': 'ReceiveMessage', 'AttributeName.1': 'All',
                   'Note': 'a b+c/d=e~\u00fc', 'MaxNumberOfMessages': '5'},
         'headers': {'host': HOST}, 'body': None},
    ]
    payload = json.dumps({'akid': PROJ_KEY, 'secret': SECRET, 'now_ms': NOW_S * 1000,
                          'requests': requests})
    out = subprocess.run(['node', '-e', JS_SIGNER], input=payload.encode(), cwd=js_dir,
                         capture_output=True, check=True).stdout
    signed = json.loads(out)
    # The SDK's HTTP handler sends the query as encoded by @smithy/querystring-builder
    # (escapeUri: RFC 3986 unreserved kept, everything else %XX, sorted as given).
    from urllib.parse import quote
    for i, (req, s) in enumerate(zip(requests, signed)):
        query = '&'.join('%s=%s' % (quote(k, safe='-_.~'), quote(v, safe='-_.~'))
                         for k, v in req['query'].items())
        headers = sorted(s['headers'].items())
        name = ['js_json_send_message', 'js_get_receive_message'][i]
        comment = ['@smithy/signature-v4 5.x (AWS SDK for JavaScript v3): JSON-protocol '
                   'SendMessage, project:token key',
                   '@smithy/signature-v4 5.x: GET with a query to re-encode'][i]
        emit(name, comment, req['method'], req['path'], query, headers,
             req['body'] or b'')


def main():
    print('/* ---- generated by tests/unit/gen_sigv_fixtures.py (botocore %s, boto %s) ---- */'
          % (botocore.__version__, boto.__version__))
    print()

    # A real botocore 1.29 SQS client: the query protocol, a form body.
    client = botocore_client()
    req = botocore_capture(client, 'send_message',
                           QueueUrl='http://localhost:8080/123456789012/q1',
                           MessageBody='hello world: +/=&? \u00fcnic\u00f8de \u2603',
                           MessageAttributes={'k': {'DataType': 'String',
                                                    'StringValue': 'v v'}})
    emit_prepared('botocore_query_send_message',
                  'botocore %s client, sqs.send_message: query protocol POST, form body'
                  % botocore.__version__, req)

    # The same client with anvil's project:token access key id.
    client = botocore_client(PROJ_KEY)
    req = botocore_capture(client, 'get_queue_url', QueueName='orders')
    emit_prepared('botocore_project_token_key',
                  'botocore client, sqs.get_queue_url, access key id "%s"' % PROJ_KEY, req)

    # botocore.auth.SigV4Auth on a GET whose parameters need encoding. AWSRequest signs the
    # params percent-encoded (%20) but sends them with urlencode (quote_plus: '+').
    req = botocore_signed('GET', 'http://%s/123456789012/q1' % HOST, {}, params=[
        ('Action', 'ReceiveMessage'), ('MessageAttributeName.1', 'a b'),
        ('Tag', 'x+y/z=w~'), ('Unicode', '\u00e9t\u00e9 \u6f22\u5b57'),
        ('AttributeName.1', 'All'), ('Empty', '')])
    emit_prepared('botocore_get_encoded_params',
                  'botocore.auth.SigV4Auth, GET with spaces, +, /, =, ~ and UTF-8 in params'
                  ' (sent as quote_plus, signed as %20)', req)

    # The JSON protocol (what botocore >= 1.31 and the SDKs of 2024 send to SQS).
    body = json.dumps({'QueueUrl': 'http://localhost:8080/123456789012/q1',
                       'MessageBody': 'json \u00e9 "quoted"'}, ensure_ascii=False).encode()
    req = botocore_signed('POST', 'http://%s/' % HOST, {
        'X-Amz-Target': 'AmazonSQS.SendMessage',
        'Content-Type': 'application/x-amz-json-1.0',
        'Content-Length': str(len(body))}, body=body)
    emit_prepared('botocore_json_send_message',
                  'botocore.auth.SigV4Auth, JSON protocol: X-Amz-Target AmazonSQS.SendMessage',
                  req)

    # x-amz-content-sha256: UNSIGNED-PAYLOAD, which botocore signs in place of the body hash
    # (payload signing off): the body is then not covered.
    req = botocore_signed('POST', 'http://%s/' % HOST, {
        'X-Amz-Target': 'AmazonSQS.ListQueues',
        'Content-Type': 'application/x-amz-json-1.0',
        'X-Amz-Content-SHA256': 'UNSIGNED-PAYLOAD'}, body=b'{}')
    emit_prepared('botocore_unsigned_payload',
                  'botocore.auth.SigV4Auth, X-Amz-Content-SHA256: UNSIGNED-PAYLOAD', req)

    # A Date header instead of X-Amz-Date: botocore rewrites it (formatdate, "-0000") and
    # signs it; the string to sign still has the ISO 8601 basic form.
    req = botocore_signed('POST', 'http://%s/' % HOST, {
        'X-Amz-Target': 'AmazonSQS.ListQueues',
        'Content-Type': 'application/x-amz-json-1.0',
        'Date': 'Thu, 01 Jan 1970 00:00:00 GMT'}, body=b'{}')
    emit_prepared('botocore_date_header',
                  'botocore.auth.SigV4Auth with a Date header (no X-Amz-Date)', req)

    # Signed right, but with a credential scope dated the day before X-Amz-Date (botocore's
    # SigV4Auth with the scope's date overridden): AWS refuses such a scope.
    class OtherScopeDate(botocore.auth.SigV4Auth):
        DAY = '20240430'

        def credential_scope(self, request):
            return '/'.join([self.DAY, self._region_name, self._service_name, 'aws4_request'])

        def scope(self, request):
            return self.credentials.access_key + '/' + self.credential_scope(request)

        def signature(self, string_to_sign, request):
            k = self._sign(('AWS4' + self.credentials.secret_key).encode(), self.DAY)
            for part in (self._region_name, self._service_name, 'aws4_request'):
                k = self._sign(k, part)
            return self._sign(k, string_to_sign, hex=True)

    body = b'{}'
    req = botocore.awsrequest.AWSRequest(method='POST', url='http://%s/' % HOST, data=body,
                                         headers={'X-Amz-Target': 'AmazonSQS.ListQueues',
                                                  'Content-Type': 'application/x-amz-json-1.0'})
    OtherScopeDate(botocore.credentials.Credentials(AKID, SECRET), 'sqs',
                   'us-east-1').add_auth(req)
    emit_prepared('botocore_scope_date_differs',
                  'SigV4Auth with the credential scope dated 20240430, X-Amz-Date 20240501',
                  req.prepare())

    # A presigned URL (SigV4QueryAuth, the non-S3 variant: the body hash is signed).
    req = botocore_presigned('GET', 'http://%s/123456789012/q1?Action=GetQueueAttributes'
                             '&AttributeName.1=All' % HOST)
    emit_prepared('botocore_presigned_get',
                  'botocore.auth.SigV4QueryAuth, presigned GET, X-Amz-Expires=300', req)

    # boto 2.49's SQSConnection (HmacAuthV4Handler): POST puts the params in the body.
    req, path, query, headers = boto2_capture(False, 'SendMessage', {
        'MessageBody': 'boto2 body: a+b c/d=e \u00e9'}, '/123456789012/q1', 'POST')
    emit('boto2_v4_post', 'boto %s SQSConnection.make_request, HmacAuthV4Handler, POST'
         % boto.__version__, req.method, path, query, headers, req.body)

    req, path, query, headers = boto2_capture(False, 'ReceiveMessage', {
        'AttributeName.1': 'All', 'WaitTimeSeconds': '0', 'Note': 'x y+z/\u00fc'},
        '/123456789012/q1', 'GET')
    emit('boto2_v4_get', 'boto 2 SQSConnection, HmacAuthV4Handler, GET', req.method, path,
         query, headers, req.body)

    # boto 2 with QuerySignatureV2AuthHandler (SignatureVersion=2, HmacSHA256). It signs
    # the connection's host without the port ("localhost"), while http.client sends
    # Host: localhost:8080.
    req, path, query, headers = boto2_capture(True, 'SendMessage', {
        'MessageBody': 'v2 body: a+b c/d=e \u00e9'}, '/123456789012/q1', 'POST')
    emit('boto2_v2_post', 'boto 2 SQSConnection, QuerySignatureV2AuthHandler, POST',
         req.method, path, query, headers, req.body)

    req, path, query, headers = boto2_capture(True, 'ReceiveMessage', {
        'AttributeName.1': 'All', 'Note': 'x y+z/\u00fc~'}, '/123456789012/q1', 'GET')
    emit('boto2_v2_get', 'boto 2 SQSConnection, QuerySignatureV2AuthHandler, GET',
         req.method, path, query, headers, req.body)

    # Names whose decoded order ("a-b" < "a.b" < "a/b" < "a~b") is not their encoded order
    # ("a%2Fb" first): SigV2 sorts decoded names.
    req, path, query, headers = boto2_capture(True, 'ListQueues', {
        'a.b': '1', 'a/b': '2', 'a-b': '3', 'a~b': '4'}, '/', 'GET')
    emit('boto2_v2_sort_order', 'boto 2, QuerySignatureV2AuthHandler, names that sort '
         'differently encoded', req.method, path, query, headers, req.body)

    # botocore's own SigV2Auth: signs the URL's netloc ("localhost:8080", the port kept),
    # names quoted with safe='' and values with safe='-_~'; the form body is sent with
    # urlencode (quote_plus).
    botocore.auth.time = types.SimpleNamespace(strftime=time.strftime,
                                               gmtime=lambda *a: NOW.timetuple())
    req = botocore.awsrequest.AWSRequest(
        method='POST', url='http://%s/123456789012/q1' % HOST,
        headers={'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'},
        data={'Action': 'SendMessage', 'MessageBody': 'botocore v2: a+b c/d=e~ \u00fc'})
    botocore.auth.SigV2Auth(botocore.credentials.Credentials(AKID, SECRET)).add_auth(req)
    emit_prepared('botocore_v2_post', 'botocore.auth.SigV2Auth, POST form body', req.prepare())

    # V2 with Expires (10 minutes before NOW) instead of Timestamp: boto 2's own
    # _calc_signature over the parameters, so the signature is right and only the date is
    # past.
    handler = boto.auth.QuerySignatureV2AuthHandler('localhost:8080', boto.config,
                                                    boto2_connection()[0].provider)
    params = {'Action': 'ListQueues', 'AWSAccessKeyId': AKID, 'SignatureVersion': '2',
              'Expires': (NOW - real_datetime.timedelta(minutes=10))
              .strftime('%Y-%m-%dT%H:%M:%SZ'), 'Version': '2012-11-05'}
    qs, sig = handler._calc_signature(params, 'GET', '/', 'localhost:8080')
    from urllib.parse import quote_plus
    emit('boto2_v2_expires_past', 'boto 2 _calc_signature (V2) with Expires 10 minutes ago',
         'GET', '/', qs + '&Signature=' + quote_plus(sig), [('Host', HOST)], b'')

    js_requests()
    print('/* ---- end of generated fixtures ---- */')


# ---- AWS's test suite -------------------------------------------------------------------

AWS_CASES = [
    'get-vanilla', 'get-vanilla-query-order-key-case', 'get-vanilla-query-order-encoded',
    'get-vanilla-query-unreserved', 'get-vanilla-utf8-query', 'get-vanilla-empty-query-key',
    'get-header-value-trim', 'get-header-key-duplicate', 'get-unreserved', 'get-utf8',
    'get-space-normalized', 'get-slashes-normalized', 'get-slash-pointless-dot-normalized',
    'get-relative-relative-normalized', 'post-header-key-sort', 'post-vanilla-empty-query-value',
    'post-x-www-form-urlencoded', 'post-x-www-form-urlencoded-parameters',
    'get-vanilla-with-session-token',
    'get-vanilla:query', 'post-x-www-form-urlencoded:query', 'get-vanilla-utf8-query:query',
]


def aws_suite(root):
    """The test_sigv.c fixtures of AWS's SigV4 test suite, from a checkout of
    awslabs/aws-c-auth: <case>/header-signed-request.txt, or query-signed-request.txt for
    the presigned form ("<case>:query")."""
    for case in AWS_CASES:
        kind, name = 'header', case
        if case.endswith(':query'):
            case, kind, name = case[:-6], 'query', case[:-6] + '-presigned'
        path = os.path.join(root, 'tests/aws-signing-test-suite/v4', case,
                            '%s-signed-request.txt' % kind)
        with open(path, 'rb') as f:
            raw = f.read()
        head, _, body = raw.partition(b'\n\n')
        lines = head.decode('utf-8').split('\n')
        method, _, rest = lines[0].partition(' ')
        target = rest.rsplit(' ', 1)[0]  # less " HTTP/1.1"
        url_path, _, query = target.partition('?')
        headers = [tuple(line.split(':', 1)) for line in lines[1:]]
        emit('aws_' + name.replace('-', '_'),
             'aws-sig-v4-test-suite %s (%s-signed-request.txt)' % (case, kind), method,
             url_path, query, headers, body, secret='wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
             now_s=1440938160)


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--aws-suite':
        sys.exit(aws_suite(sys.argv[2]))
    sys.exit(main())
