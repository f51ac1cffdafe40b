// oidc-provider on loopback for latchkey's OAuth interop tests (see ../README.md).
//
//   node server.mjs [--port N] [--admin-port N] [--certs DIR]
//
// Serves a real oidc-provider 9 over HTTPS on 127.0.0.1 (certificate from a private CA made
// with the openssl CLI at start-up) and a plain-HTTP admin side channel on another loopback
// port. When both listen, prints one JSON line on stdout:
//
//   {"issuer":"https://127.0.0.1:PORT","port":PORT,"admin":"http://127.0.0.1:APORT","ca":"/path/ca.pem"}
//
// Nothing else goes to stdout; notes go to stderr and never carry a token, a code, a cookie or
// a request body.
//
// Environment (flags win):
//   LATCHKEY_OIDC_PORT          HTTPS port, 0 = pick a free one (default 0)
//   LATCHKEY_OIDC_ADMIN_PORT    admin port, 0 = pick (default 0)
//   LATCHKEY_OIDC_CERTS         directory for ca.pem, server.pem, server.key (default: a new
//                               temporary directory)
//   LATCHKEY_OIDC_ACCESS_TTL    access token lifetime, seconds (default 5)
//   LATCHKEY_OIDC_DEVICE_TTL    device code lifetime, seconds (default 120)
//   LATCHKEY_OIDC_DEVICE_INTERVAL  polling interval enforced with slow_down (default 5, the
//                               RFC 8628 default: oidc-provider sends no `interval`)
//   LATCHKEY_OIDC_MAX_SECONDS   exit after this many seconds whatever happens (default 1800)
//
// The server also exits when its parent process goes away, so a killed test run never
// leaves it behind.
//
// Admin side channel (loopback only, plain HTTP, no authentication — test use only):
//   GET  /stats  {"down":bool,"grant_types":{gt:n},"unavailable":{gt:n},"errors":{code:n},
//                 "hold":null|"before"|"after","parked":n,"dropped":n,
//                 "userinfo":[{"status":n,"token":"1a2b3c4d"}]}
//                grant_types: token-endpoint requests that reached oidc-provider, by
//                grant_type; unavailable: those answered 503 while down; errors: OAuth error
//                codes the token endpoint answered (slow_down included); hold: what /hold set;
//                parked: refresh_token requests held now; dropped: held requests closed
//                without an answer; userinfo: the last 100 /me requests in order, each with
//                its status and the first 8 hex digits of the SHA-256 of its bearer token
//                (latchkey's `Secret::fingerprint`, so tests can tell which token was sent)
//   POST /down   the token endpoint answers 503 from now on (`?retry_after=S` adds Retry-After)
//   POST /up     back to normal
//   POST /hold   from now on every refresh_token grant request is parked until /release:
//                `?stage=before` (the default) before oidc-provider sees it (not counted in
//                grant_types until released), `?stage=after` once oidc-provider has answered it
//                (the refresh token is rotated) but before the answer is written. Lets a test
//                kill a client while its refresh is in flight.
//   POST /release  stops holding; parked requests go on (`before`: to oidc-provider; `after`:
//                their answers are written). `?drop=1`: their connections are closed instead,
//                without an answer (a request parked `before` is then never processed).
//   POST /revoke-access  revokes every access token issued so far (as a server-side
//                revocation would); /me answers 401 for them. Reports {"revoked":n}.
//   POST /reset  counters and the userinfo log to zero (does not change down/up or holding)

import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseQuery } from 'node:querystring';

import Provider from 'oidc-provider';

const LOOPBACK = '127.0.0.1';
const CLIENT_ID = 'latchkey-native';
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

// oidc-provider prints its notices with console.info (stdout); stdout carries only the ready
// line, so every console output goes to stderr.
console.log = console.error;
console.info = console.error;

function note(message) {
  process.stderr.write(`oidc-server: ${message}\n`);
}

function fail(message) {
  note(message);
  process.exit(1);
}

function option(flag, envName, fallback) {
  const i = process.argv.indexOf(flag);
  if (i !== -1) {
    if (i + 1 >= process.argv.length) fail(`${flag} needs a value`);
    return process.argv[i + 1];
  }
  const fromEnv = process.env[envName];
  return fromEnv === undefined || fromEnv === '' ? fallback : fromEnv;
}

function intOption(flag, envName, fallback, min, max) {
  const raw = option(flag, envName, String(fallback));
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(`${flag} / ${envName}: expected an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const port = intOption('--port', 'LATCHKEY_OIDC_PORT', 0, 0, 65535);
const adminPort = intOption('--admin-port', 'LATCHKEY_OIDC_ADMIN_PORT', 0, 0, 65535);
const accessTtl = intOption('--access-ttl', 'LATCHKEY_OIDC_ACCESS_TTL', 5, 1, 86400);
const deviceTtl = intOption('--device-ttl', 'LATCHKEY_OIDC_DEVICE_TTL', 120, 5, 3600);
const deviceInterval = intOption('--device-interval', 'LATCHKEY_OIDC_DEVICE_INTERVAL', 5, 1, 60);
const maxSeconds = intOption('--max-seconds', 'LATCHKEY_OIDC_MAX_SECONDS', 1800, 1, 86400);
const certDir = option('--certs', 'LATCHKEY_OIDC_CERTS', '') || mkdtempSync(join(tmpdir(), 'latchkey-oidc-'));

// ---------------------------------------------------------------------------------------
// Certificates: a CA and a leaf for 127.0.0.1 / localhost / ::1, with the openssl CLI.

function makeCertificates(dir) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (name) => join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=latchkey interop CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(p('server.ext'), [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
    '',
  ].join('\n'));
  openssl('x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'),
    '-CAcreateserial', '-days', '2', '-extfile', p('server.ext'), '-out', p('server.pem'));
  return { ca: p('ca.pem'), cert: readFileSync(p('server.pem')), key: readFileSync(p('server.key')) };
}

let certs;
try {
  certs = makeCertificates(certDir);
} catch (e) {
  fail(`openssl failed: ${e.stderr ? e.stderr.toString().trim() : e.message}`);
}

// ---------------------------------------------------------------------------------------
// Admin state and the token-endpoint middleware.

const admin = {
  down: false,
  retryAfter: undefined,
  grantTypes: {},
  unavailable: {},
  errors: {},
  // POST /hold: 'before' | 'after' | undefined, and the requests parked now.
  hold: undefined,
  parked: [],
  dropped: 0,
  // The last /me requests: { status, token } (a fingerprint, never the token).
  userinfo: [],
};
const USERINFO_LOG = 100;

// Access tokens issued and not yet destroyed (jti → expiry), for POST /revoke-access.
const liveAccessTokens = new Map();

// Waits until POST /release; resolves to 'go' or 'drop'.
function park(stage) {
  return new Promise((resolve) => {
    admin.parked.push({ stage, resolve });
  });
}

function releaseAll(action) {
  const parked = admin.parked;
  admin.parked = [];
  admin.hold = undefined;
  if (action === 'drop') admin.dropped += parked.length;
  for (const p of parked) p.resolve(action);
  return parked.length;
}

// Closes the client's connection without an answer.
function dropConnection(ctx) {
  ctx.respond = false;
  ctx.req.socket.destroy();
}

function fingerprint(value) {
  return createHash('sha256').update(value).digest('hex').slice(0, 8);
}

function bump(map, key) {
  const k = key || '(none)';
  map[k] = (map[k] || 0) + 1;
}

// RFC 8628 §3.5 polling-rate enforcement, which oidc-provider 9 does not do (it defines
// `slow_down` but never sends it). Per device code: when it was issued or last polled, and
// its current interval. A poll earlier than `interval - 1` seconds after the previous one (a
// second of slack: clients count in whole wall-clock seconds) gets `slow_down`, and the
// interval grows by 5 s for every later poll, as the RFC says.
const devicePolls = new Map();
const SLACK_MS = 1000;

function readRawBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 56 * 1024) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function tokenEndpoint(ctx, next) {
  // Read the form here (oidc-provider accepts an already-read body) so the grant type can be
  // counted and the device code rate-checked before oidc-provider sees the request.
  let form = {};
  if (ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) {
    const raw = await readRawBody(ctx.req);
    ctx.req.body = raw;
    form = parseQuery(raw);
  }
  const grantType = typeof form.grant_type === 'string' ? form.grant_type : undefined;

  if (admin.down) {
    bump(admin.unavailable, grantType);
    ctx.status = 503;
    if (admin.retryAfter !== undefined) ctx.set('Retry-After', String(admin.retryAfter));
    ctx.type = 'text/html';
    ctx.body = '<html><body><h1>503 Service Unavailable</h1></body></html>';
    return;
  }
  const held = grantType === 'refresh_token' ? admin.hold : undefined;
  if (held === 'before' && (await park('before')) === 'drop') {
    dropConnection(ctx);
    return;
  }
  bump(admin.grantTypes, grantType);

  if (grantType === DEVICE_CODE_GRANT && typeof form.device_code === 'string') {
    const entry = devicePolls.get(form.device_code);
    if (entry) {
      const now = Date.now();
      const early = now - entry.last < entry.interval * 1000 - SLACK_MS;
      entry.last = now;
      if (early) {
        entry.interval += 5;
        bump(admin.errors, 'slow_down');
        ctx.status = 400;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = {
          error: 'slow_down',
          error_description: 'you are polling too quickly and should back off at a reasonable rate',
        };
        return;
      }
    }
  }

  await next();
  if (ctx.status >= 400 && ctx.body && typeof ctx.body === 'object' && ctx.body.error) {
    bump(admin.errors, ctx.body.error);
  }
  if (held === 'after' && admin.hold === 'after' && (await park('after')) === 'drop') {
    dropConnection(ctx);
  }
}

async function userinfoEndpoint(ctx, next) {
  await next();
  const auth = ctx.get('authorization');
  const bearer = /^Bearer (.+)$/i.exec(auth);
  admin.userinfo.push({ status: ctx.status, token: bearer ? fingerprint(bearer[1].trim()) : null });
  if (admin.userinfo.length > USERINFO_LOG) admin.userinfo.shift();
}

async function deviceAuthorizationEndpoint(ctx, next) {
  await next();
  if (ctx.status === 200 && ctx.body && typeof ctx.body.device_code === 'string') {
    devicePolls.set(ctx.body.device_code, { last: Date.now(), interval: deviceInterval });
    // Forget codes long expired, so the map stays small in long runs.
    const cutoff = Date.now() - 2 * deviceTtl * 1000;
    for (const [code, entry] of devicePolls) {
      if (entry.last < cutoff) devicePolls.delete(code);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The provider.

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', alg: 'RS256', use: 'sig' };
}

function providerConfiguration() {
  return {
    clients: [{
      client_id: CLIENT_ID,
      client_name: 'latchkey interop',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
      response_types: ['code'],
      // Native client: oidc-provider accepts any port on a loopback redirect URI (RFC 8252 §7.3).
      redirect_uris: ['http://127.0.0.1/callback', 'com.example.latchkey:/oauth2redirect'],
    }],
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access'],
    pkce: {
      // Always, and S256 only (oidc-provider 9 supports nothing else).
      required: () => true,
    },
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    ttl: {
      AccessToken: accessTtl,
      AuthorizationCode: 60,
      DeviceCode: deviceTtl,
      IdToken: 3600,
      Interaction: 600,
      RefreshToken: 86400,
      Session: 3600,
      Grant: 86400,
    },
  };
}

function listen(server, wanted) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(wanted, LOOPBACK, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

const main = https.createServer({ cert: certs.cert, key: certs.key });
const adminServer = http.createServer(handleAdmin);

const chosenPort = await listen(main, port);
const issuer = `https://${LOOPBACK}:${chosenPort}`;
const provider = new Provider(issuer, providerConfiguration());
provider.use(async (ctx, next) => {
  if (ctx.path === '/token') return tokenEndpoint(ctx, next);
  if (ctx.path === '/device/auth') return deviceAuthorizationEndpoint(ctx, next);
  if (ctx.path === '/me') return userinfoEndpoint(ctx, next);
  return next();
});
provider.on('access_token.saved', (token) => {
  const now = Math.floor(Date.now() / 1000);
  for (const [jti, exp] of liveAccessTokens) {
    if (exp < now) liveAccessTokens.delete(jti);
  }
  liveAccessTokens.set(token.jti, token.exp ?? now + accessTtl);
});
provider.on('access_token.destroyed', (token) => liveAccessTokens.delete(token.jti));
provider.on('server_error', (_ctx, error) => note(`server_error: ${error.message}`));
main.on('request', provider.callback());
const chosenAdmin = await listen(adminServer, adminPort);

async function revokeAccessTokens() {
  const jtis = [...liveAccessTokens.keys()];
  liveAccessTokens.clear();
  await Promise.all(jtis.map((jti) => provider.AccessToken.adapter.destroy(jti)));
  return jtis.length;
}

function handleAdmin(req, res) {
  const url = new URL(req.url, 'http://admin');
  const reply = (status, body) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /stats':
      return reply(200, {
        down: admin.down,
        grant_types: admin.grantTypes,
        unavailable: admin.unavailable,
        errors: admin.errors,
        hold: admin.hold ?? null,
        parked: admin.parked.length,
        dropped: admin.dropped,
        userinfo: admin.userinfo,
      });
    case 'POST /hold': {
      const stage = url.searchParams.get('stage') ?? 'before';
      if (stage !== 'before' && stage !== 'after') return reply(400, { error: 'stage must be before or after' });
      admin.hold = stage;
      note(`holding refresh_token requests (${stage})`);
      return reply(200, { hold: stage });
    }
    case 'POST /release': {
      const drop = url.searchParams.get('drop');
      if (drop !== null && drop !== '0' && drop !== '1') return reply(400, { error: 'drop must be 0 or 1' });
      const action = drop === '1' ? 'drop' : 'go';
      const released = releaseAll(action);
      if (released > 0) note(`released ${released} held request(s) (${action})`);
      return reply(200, { released, dropped: action === 'drop' });
    }
    case 'POST /revoke-access':
      revokeAccessTokens().then(
        (revoked) => {
          note(`revoked ${revoked} access token(s)`);
          reply(200, { revoked });
        },
        (e) => reply(500, { error: e.message }),
      );
      return undefined;
    case 'POST /down': {
      const ra = url.searchParams.get('retry_after');
      if (ra !== null && !/^[0-9]{1,5}$/.test(ra)) return reply(400, { error: 'retry_after must be seconds' });
      admin.down = true;
      admin.retryAfter = ra === null ? undefined : Number(ra);
      note(`token endpoint down${ra === null ? '' : ` (Retry-After: ${ra})`}`);
      return reply(200, { down: true });
    }
    case 'POST /up':
      if (admin.down) note('token endpoint up');
      admin.down = false;
      admin.retryAfter = undefined;
      return reply(200, { down: false });
    case 'POST /reset':
      admin.grantTypes = {};
      admin.unavailable = {};
      admin.errors = {};
      admin.dropped = 0;
      admin.userinfo = [];
      return reply(200, { reset: true });
    default:
      return reply(404, { error: `no route ${route}` });
  }
}

function shutdown(signal) {
  note(`${signal}: stopping`);
  main.close();
  adminServer.close();
  main.closeAllConnections?.();
  adminServer.closeAllConnections?.();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
setTimeout(() => shutdown(`${maxSeconds} s limit`), maxSeconds * 1000).unref();
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) shutdown('parent process gone');
}, 1000).unref();

note(`client ${CLIENT_ID}; access tokens ${accessTtl}s; device codes ${deviceTtl}s, interval ${deviceInterval}s`);
process.stdout.write(`${JSON.stringify({
  issuer,
  port: chosenPort,
  admin: `http://${LOOPBACK}:${chosenAdmin}`,
  ca: certs.ca,
})}\n`);
