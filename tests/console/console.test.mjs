// End-to-end tests of the triage console: the real referral_broker (mutual
// TLS), the real referral_console, Debian's headless Chromium driven by
// playwright-core, and referral_cli as the agency. Each run has its own
// temporary directory, its own PKI and ephemeral ports, so ctest -j2 is
// safe. Screenshots of the queue and referral screens go to
// $REFERRAL_CONSOLE_ARTIFACTS (build/console-artifacts by default).
//
// Run by ctest (tests/CMakeLists.txt, test `console_e2e`), which sets the
// binaries' paths in the environment. It fails, never skips, when Chromium
// or node_modules are missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run this test through ctest)`);
  return value;
};
const SOURCE = env('REFERRAL_SOURCE_DIR');
const BROKER = env('REFERRAL_BROKER_BIN');
const CLI = env('REFERRAL_CLI_BIN');
const CONSOLE = env('REFERRAL_CONSOLE_BIN');
const ARTIFACTS = process.env.REFERRAL_CONSOLE_ARTIFACTS ||
  path.join(path.dirname(path.dirname(CONSOLE)), 'console-artifacts');
const CHROMIUM = '/usr/bin/chromium';

let chromium;
{
  const require = createRequire(import.meta.url);
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    throw new Error('playwright-core is not installed: run `npm ci --no-audit --no-fund` in ' +
      'tests/console (deploy/test.sh does)');
  }
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (deploy/install-deps.sh does)`);
  }
}

const ALICE = { user: 'alice.triage', password: 'fictitious-pass-alice-1' };
const BOB = { user: 'bob.triage', password: 'fictitious-pass-bob-22' };
const EXAMPLE = path.join(SOURCE, 'clients/examples/police-domestic-abuse.json');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'console-e2e-'));
const pki = path.join(dir, 'pki');
const children = [];
let brokerAddress;
let consoleUrl;
let browser;

// Polls `check` until it returns a truthy value or `ms` pass.
async function waitFor(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function startProcess(name, bin, args) {
  const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
  const child = spawn(bin, args, { stdio: ['ignore', log, log] });
  child.exitedWith = null;
  child.on('exit', (code, signal) => { child.exitedWith = code ?? signal; });
  children.push(child);
  return child;
}

async function portFrom(file, child, name) {
  const text = await waitFor(`${name} to write its port`, () => {
    if (child.exitedWith !== null) {
      throw new Error(`${name} exited (${child.exitedWith}): ` +
        fs.readFileSync(path.join(dir, `${name}.log`), 'utf8'));
    }
    return fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim();
  });
  return Number(text);
}

function cli(principal, ...args) {
  return execFileSync(CLI, [`--server=${brokerAddress}`, `--ca=${pki}/ca.pem`,
    `--cert=${pki}/${principal}.pem`, `--key=${pki}/${principal}.key`, ...args], { encoding: 'utf8' });
}

let submissions = 0;
function submitReferral(example = EXAMPLE, agency = 'cambs-police') {
  submissions += 1;
  const out = cli(agency, 'submit', example, `--idempotency_key=e2e-${submissions}`);
  const id = /submitted (\S+)/.exec(out)?.[1];
  assert.ok(id, `unexpected CLI output: ${out}`);
  return id;
}

function addUser({ user, password }) {
  execFileSync(CONSOLE, ['add-user', `--users_file=${dir}/users`, `--user=${user}`,
    // Cheap hashes for the test; production keeps the defaults.
    '--argon2_iterations=1', '--argon2_memory_kib=8192'], { input: `${password}\n` });
}

// A raw HTTPS request to the console, trusting the test's CA.
function consoleRequest(method, urlPath, headers = {}, body = undefined) {
  return new Promise((resolve, reject) => {
    const request = https.request(new URL(urlPath, consoleUrl), {
      method, headers, ca: fs.readFileSync(`${pki}/ca.pem`),
    }, (response) => {
      let data = '';
      response.on('data', (chunk) => { data += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, body: data, headers: response.headers }));
    });
    request.on('error', reject);
    if (body !== undefined) request.write(body);
    request.end();
  });
}

function referralOnScreen(page) {
  const id = decodeURIComponent(new URL(page.url()).hash.replace('#/referral/', ''));
  assert.match(id, /^REF-\d{4}-\d+$/);
  return id;
}

async function signIn(who) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  await page.goto(`${consoleUrl}/#/queue`);
  await page.getByLabel('User name').fill(who.user);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(`Signed in as ${who.user}`).waitFor();
  return { context, page };
}

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  execFileSync('bash', [path.join(SOURCE, 'deploy/make-dev-certs.sh'), pki], { stdio: 'ignore' });
  // The shipped principals: the console's holds triage, and ops for the
  // overview's counts.
  const principals = path.join(SOURCE, 'server/config/principals.txtpb');
  assert.match(fs.readFileSync(principals, 'utf8'),
    /name: "triage-console"\n\s*roles: ROLE_TRIAGE\n\s*roles: ROLE_OPS/);

  const broker = startProcess('broker', BROKER, ['--listen=127.0.0.1:0', `--port_file=${dir}/broker.port`,
    '--metrics_listen=', `--data_dir=${dir}/data`, `--tls_certificate_file=${pki}/server.pem`,
    `--tls_private_key_file=${pki}/server.key`, `--tls_client_ca_file=${pki}/ca.pem`,
    `--principals_file=${principals}`]);
  brokerAddress = `127.0.0.1:${await portFrom(`${dir}/broker.port`, broker, 'broker')}`;

  addUser(ALICE);
  addUser(BOB);
  assert.equal(fs.statSync(`${dir}/users`).mode & 0o777, 0o600);

  const console_ = startProcess('console', CONSOLE, ['--listen=127.0.0.1:0', `--port_file=${dir}/console.port`,
    `--tls_cert=${pki}/server.pem`, `--tls_key=${pki}/server.key`, `--users_file=${dir}/users`,
    `--broker=${brokerAddress}`, `--ca=${pki}/ca.pem`, `--client_cert=${pki}/triage-console.pem`,
    `--client_key=${pki}/triage-console.key`, '--stats_interval_seconds=1']);
  consoleUrl = `https://127.0.0.1:${await portFrom(`${dir}/console.port`, console_, 'console')}`;

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  for (const child of children) {
    if (child.exitedWith === null) child.kill('SIGTERM');
  }
  await Promise.all(children.map((child) => waitFor('a child to exit', () => child.exitedWith !== null, 15000)
    .catch(() => child.kill('SIGKILL'))));
  const consoleLog = path.join(dir, 'console.log');
  if (fs.existsSync(consoleLog)) fs.copyFileSync(consoleLog, path.join(ARTIFACTS, 'console.log'));
  fs.rmSync(dir, { recursive: true, force: true });
});

let first;  // the referral the first two tests follow

test('a referral submitted through the agency CLI appears live in the queue', async () => {
  const { context, page } = await signIn(ALICE);
  await page.locator('section[data-queue="ifd-triage"]').waitFor();
  await page.getByText('● Live').waitFor();
  // Set on this document only: still there afterwards means no reload.
  await page.evaluate(() => { window.notReloaded = true; });
  first = submitReferral();
  const row = page.locator(`tr[data-referral="${first}"]`);
  await row.waitFor();
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  const text = await row.innerText();
  assert.match(text, /AF \(10\), BF \(7\)/);  // initials and ages, never names
  assert.doesNotMatch(await page.locator('#queues').innerText(), /Alpha|Bravo|Fictitious/);
  assert.match(text, /police/);
  assert.match(await row.locator('.due').getAttribute('class'), /due-(red|amber|green)/);
  // The other examples, so the screenshot shows the markers: an immediate
  // risk (the urgent queue, due in 4 hours) and a school's referral.
  const urgent = submitReferral(path.join(SOURCE, 'clients/examples/hospital-immediate-risk.json'),
    'nwangliaft-hospital');
  const school = submitReferral(path.join(SOURCE, 'clients/examples/school-neglect.json'),
    'peterborough-school-1');
  await page.locator(`tr[data-referral="${urgent}"]`).waitFor();
  await page.locator(`tr[data-referral="${school}"]`).waitFor();
  assert.match(await page.locator(`tr[data-referral="${urgent}"]`).innerText(), /Immediate risk/);
  assert.match(await page.locator(`tr[data-referral="${urgent}"] .due`).getAttribute('class'), /due-(red|amber)/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'queue.png'), fullPage: true });
  // Tablet width: the page itself does not scroll sideways.
  await page.setViewportSize({ width: 768, height: 1024 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  await page.screenshot({ path: path.join(ARTIFACTS, 'queue-tablet.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 860 });

  // The ops overview: counts per queue and the sampled depth chart.
  await page.getByRole('link', { name: 'Overview' }).click();
  const triageRow = page.locator('#overview-view tr', { has: page.getByRole('rowheader', { name: 'ifd-triage' }) });
  await triageRow.waitFor();
  assert.match(await triageRow.innerText(), /^ifd-triage\s+2\s+0\s+0/);
  await page.locator('svg.chart polyline').first().waitFor({ state: 'attached' });
  await page.screenshot({ path: path.join(ARTIFACTS, 'overview.png'), fullPage: true });
  await context.close();
});

test('a staff member claims it, records a decision, and the agency CLI sees the outcome', async () => {
  const { context, page } = await signIn(ALICE);
  await page.locator(`tr[data-referral="${first}"]`).waitFor();
  await page.getByText('● Live').waitFor();
  await page.getByRole('button', { name: 'Claim next from ifd-triage' }).click();
  await page.getByRole('heading', { name: `Referral ${first}` }).waitFor();
  await page.locator('#referral-view .claim-note.mine').waitFor();
  await page.getByRole('heading', { name: 'The child’s voice' }).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'referral.png'), fullPage: true });

  await page.getByLabel('Outcome').selectOption('early-help');
  await page.getByLabel('Rationale (recorded with the decision)').fill('Fictitious test: family accepts early help.');
  await page.getByLabel('Feedback for the referrer').fill('Early help has been offered to the family.');
  await page.getByRole('button', { name: 'Record decision' }).click();
  await page.getByText(`decided: early-help by ${ALICE.user}`).waitFor();

  const outcomes = cli('cambs-police', 'outcomes', '--agency=cambs-police');
  assert.match(outcomes, new RegExp(`outcome ${first} decision=early-help .*feedback="Early help has been offered`));
  // The broker's audit trail names the staff member with the gateway.
  const audit = cli('admin', 'audit-export', '--since=1h');
  for (const action of ['claim', 'decide']) {
    assert.match(audit, new RegExp(
      `principal=triage-console on_behalf_of="${ALICE.user}" action=${action} referral=${first} result=OK`));
  }
  await context.close();
});

test('a second staff member cannot decide a referral claimed by the first', async () => {
  const submitted = submitReferral();
  const alice = await signIn(ALICE);
  await alice.page.locator(`tr[data-referral="${submitted}"]`).waitFor();
  await alice.page.getByText('● Live').waitFor();
  await alice.page.getByRole('button', { name: 'Claim next from ifd-triage' }).click();
  await alice.page.locator('#referral-view .claim-note.mine').waitFor();
  // Claims come in delivery order: whichever was at the head.
  const id = referralOnScreen(alice.page);

  const bob = await signIn(BOB);
  await bob.page.goto(`${consoleUrl}/#/referral/${id}`);
  const note = bob.page.locator('#referral-view .claim-note.other');
  await note.waitFor();
  assert.match(await note.innerText(), new RegExp(`Claimed by ${ALICE.user} until .*Only they can decide`));
  assert.equal(await bob.page.locator('#decide-form').count(), 0);
  // Nor through the API with his own valid session and CSRF token.
  const refused = await bob.page.evaluate(async (referralId) => {
    const session = await (await fetch('/api/session')).json();
    const response = await fetch(`/api/referrals/${referralId}/decide`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token },
      body: JSON.stringify({ decision: 'no-further-action', rationale: 'not mine to decide' }),
    });
    return { status: response.status, body: await response.json() };
  }, id);
  assert.equal(refused.status, 403);
  assert.match(refused.body.error, new RegExp(`claimed by ${ALICE.user}`));
  const outcomes = cli('cambs-police', 'outcomes', '--agency=cambs-police');
  assert.doesNotMatch(outcomes, new RegExp(`outcome ${id} `));

  // Alice releases it with a reason; it is back in the queue for anyone.
  await alice.page.getByLabel('Reason (kept in the history)').fill('Fictitious test: handing over');
  await alice.page.getByRole('button', { name: 'Release' }).click();
  await alice.page.locator(`tr[data-referral="${id}"]`).waitFor();
  await alice.context.close();
  await bob.context.close();
});

test('a request without the CSRF token is refused', async () => {
  const id = submitReferral();
  const { context, page } = await signIn(BOB);
  await page.locator(`tr[data-referral="${id}"]`).waitFor();
  const before_ = await page.locator('section[data-queue="ifd-triage"] tr[data-referral]').count();
  const refused = await page.evaluate(async () => {
    const response = await fetch('/api/queues/ifd-triage/claim', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}',
    });
    return { status: response.status, body: await response.json() };
  });
  assert.equal(refused.status, 403);
  assert.match(refused.body.error, /CSRF/);
  // A wrong token is refused the same way, and nothing was claimed.
  const wrong = await page.evaluate(async () => (await fetch('/api/queues/ifd-triage/claim', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'f'.repeat(64) }, body: '{}',
  })).status);
  assert.equal(wrong, 403);
  const queues = await page.evaluate(async () => (await fetch('/api/queues')).json());
  const triage = queues.queues.find((q) => q.queue === 'ifd-triage');
  assert.equal(triage.entries.length, before_);
  assert.ok(triage.entries.some((entry) => entry.referral_id === id));
  assert.ok(!triage.claimed.some((claim) => claim.holder === BOB.user));
  await context.close();
});

test('a signed-out session cannot read a referral', async () => {
  submitReferral();
  const { context, page } = await signIn(ALICE);
  await page.locator('section[data-queue="ifd-triage"] tbody tr[data-referral]').first().waitFor();
  await page.getByText('● Live').waitFor();
  await page.getByRole('button', { name: 'Claim next from ifd-triage' }).click();
  await page.locator('#referral-view .claim-note.mine').waitFor();
  const id = referralOnScreen(page);
  const cookie = (await context.cookies()).find((c) => c.name === 'console_session');
  assert.ok(cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict');
  const header = { Cookie: `console_session=${cookie.value}` };
  const readable = await consoleRequest('GET', `/api/referrals/${id}`, header);
  assert.equal(readable.status, 200);
  assert.match(readable.body, /claimed_by_you/);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  // The old session token is dead on the server, not just forgotten by the
  // browser.
  const refused = await consoleRequest('GET', `/api/referrals/${id}`, header);
  assert.equal(refused.status, 401);
  assert.doesNotMatch(refused.body, /Alpha|Bravo|childVoice|child_voice/);
  await page.goto(`${consoleUrl}/#/referral/${id}`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.locator('#referral-view').isHidden(), true);
  await context.close();
});

test('the console logs no personal data', () => {
  const log = fs.readFileSync(path.join(dir, 'console.log'), 'utf8');
  assert.match(log, /"event":"signed_in"/);
  // Names, NHS numbers, postcodes and free text of the example referrals.
  for (const personal of ['Alpha', 'Bravo', 'Fictitious-Example', '9990000026', 'PE1 2AB',
    'Imaginary Terrace', 'hands over', 'early help has been offered']) {
    assert.ok(!log.toLowerCase().includes(personal.toLowerCase()), `console log contains "${personal}"`);
  }
});
