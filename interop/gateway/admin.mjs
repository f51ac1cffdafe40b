// The door-station admin pages in headless Chromium (Debian's), driven by playwright-core.
// Run by interop/gateway.sh with SETUP_URL (the one-time link), BASE, OUT (screenshot
// folder), CHROMIUM (default /usr/bin/chromium), PASSWORD.
//
// First-boot setup through the link, the dashboard (certificate days left, token status),
// logout, login, cookie flags; then five wrong passwords from a fresh browser → the blocked
// message. One line per check; the first failure exits 1.
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const { SETUP_URL, BASE, OUT } = process.env;
const PASSWORD = process.env.PASSWORD ?? 'Interop1Password';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

function ok(what) {
  console.log(`admin.mjs: ok: ${what}`);
}
function expect(cond, what) {
  if (!cond) {
    console.error(`admin.mjs: FAILED: ${what}`);
    process.exit(1);
  }
  ok(what);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  timeout: 30000,
});
try {
  // The certificate is self-signed: this browser context accepts it, as a user would once.
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);

  // First-boot setup through the one-time link.
  await page.goto(SETUP_URL);
  expect((await page.title()).startsWith('Set up'), 'setup page opened from the one-time link');
  await page.screenshot({ path: `${OUT}/1-setup.png`, fullPage: true });
  await page.fill('input[name=password]', PASSWORD);
  await page.fill('input[name=confirm]', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  expect(new URL(page.url()).pathname === '/admin', `setup lands on the dashboard (${page.url()})`);

  // The dashboard: certificate days left and the token status.
  const text = await page.textContent('body');
  const days = /Days left\s*(\d+)/.exec(text);
  expect(days && Number(days[1]) >= 390 && Number(days[1]) <= 398,
    `dashboard shows the certificate and its days left (${days ? days[1] : text.slice(0, 400)})`);
  expect(/Token/.test(text) && /No token keeper is running|Valid/.test(text),
    'dashboard shows the token status');
  await page.screenshot({ path: `${OUT}/2-dashboard.png`, fullPage: true });

  // Cookie flags.
  const cookies = await context.cookies(BASE);
  const session = cookies.find((c) => c.name === '__Host-lk_session');
  expect(session && session.httpOnly && session.secure && session.sameSite === 'Strict'
    && session.path === '/' && !session.domain.startsWith('.'),
    `session cookie is __Host-, HttpOnly, Secure, SameSite=Strict (${JSON.stringify({ ...session, value: '…' })})`);

  // The one-time link is spent.
  await page.goto(SETUP_URL);
  expect(!(await page.textContent('body')).includes('Choose the admin password'),
    'the setup link works only once');

  // Logout, then log in again.
  await page.goto(`${BASE}/admin`);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/logout"] button')]);
  await page.goto(`${BASE}/admin`);
  expect(new URL(page.url()).pathname === '/login', 'after logout the dashboard asks for a login');
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  expect(new URL(page.url()).pathname === '/admin', 'login with the right password');
  await page.screenshot({ path: `${OUT}/3-after-login.png`, fullPage: true });
  // The script's API checks go on with this session.
  const again = (await context.cookies(BASE)).find((c) => c.name === '__Host-lk_session');
  expect(again && again.value !== session.value, 'login rotated the session id');
  // A secret: 0600 when this creates the file (gateway.sh creates it 0600 beforehand).
  if (process.env.SESSION_FILE) writeFileSync(process.env.SESSION_FILE, again.value, { mode: 0o600 });

  // Five wrong passwords from a fresh browser: the blocked message.
  const stranger = await browser.newContext({ ignoreHTTPSErrors: true });
  const p2 = await stranger.newPage();
  p2.setDefaultTimeout(15000);
  let last = '';
  for (let i = 0; i < 5; i++) {
    await p2.goto(`${BASE}/login`);
    await p2.fill('input[name=password]', `Wrong${i}Password`);
    await Promise.all([p2.waitForLoadState(), p2.click('button[type=submit]')]);
    last = await p2.textContent('body');
  }
  expect(/Too many failed logins/.test(last), 'the fifth wrong password shows the blocked message');
  await p2.goto(`${BASE}/login`);
  await p2.fill('input[name=password]', PASSWORD);
  await Promise.all([p2.waitForLoadState(), p2.click('button[type=submit]')]);
  expect(/Too many failed logins/.test(await p2.textContent('body')),
    'while blocked, even the right password is refused');
  await p2.screenshot({ path: `${OUT}/4-blocked.png`, fullPage: true });
} finally {
  await browser.close();
}
