// QR Bridge end to end: the built bridge, Debian's Chromium, a desktop and a phone with a virtual authenticator.
//
// Starts `target/debug/qr-bridge` itself (run `cargo leptos build` first), once per store
// (embedded and Redis) and once more with a short session TTL, then drives the pages.
// Screenshots of both sides of every case land in end2end/results/<store>/.

import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer, connect } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { get as httpsGet } from "node:https";
import { createHash, randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const binary = process.env.QR_BRIDGE_BIN ?? join(root, "target/debug/qr-bridge");
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const results = join(here, "results");
const KEY = "cli_e2e_publishable_key_0001";
// The demo app's backend key: the enrollment bridge is started by a backend.
const SECRET = "sk_e2e_backend_secret_0001";

const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent:
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
};
const DESKTOP = {
  viewport: { width: 1280, height: 800 },
  userAgent:
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
};

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A bridge process on its own port, data directory and Redis prefix. With `acme` (a started
 * pebble), it serves https://bridge.test:<port> with the certificate it gets from pebble.
 */
async function startBridge({ store, ttl, acme = null, port = null, alsoAllowed = [] }) {
  port ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), "qrb-e2e-"));
  const prefix = `qrbe2e-${process.pid}-${port}`;
  const origin = acme ? `https://bridge.test:${port}` : `http://localhost:${port}`;
  const tls = acme
    ? `
[acme]
domains = ["bridge.test"]
directory = "${acme.directory}"
directory_ca = "${acme.apiCa}"
cache_dir = "${join(dir, "acme")}"
`
    : "";
  const config = `
addr = "127.0.0.1:${port}"
public_origin = "${origin}"
store = "${store === "redis" ? redisUrl : "memory"}"
redis_prefix = "${prefix}"
# The machine's Redis keeps nothing on disk; fine for a test, refused otherwise.
allow_volatile_redis = true
session_ttl = "${ttl}"
data_dir = "${join(dir, "data")}"
home_app = "demo"

[[apps]]
id = "demo"
name = "Acme Store"
publishable_key = "${KEY}"
secret_key_sha256 = "${createHash("sha256").update(SECRET).digest("hex")}"
allowed_origins = ${JSON.stringify([origin, ...alsoAllowed])}
rp_id = "${acme ? "bridge.test" : "localhost"}"
open_signup = true
${tls}`;
  writeFileSync(join(dir, "bridge.toml"), config);
  const child = spawn(binary, ["--config", join(dir, "bridge.toml"), "serve"], {
    cwd: root,
    env: { ...process.env, LEPTOS_SITE_ROOT: join(root, "target/site"), RUST_LOG: "warn" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  // With ACME, this also waits for the certificate: no handshake succeeds before it.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if (acme ? (await getTrusting(acme.root, port, "/healthz")).ok : (await fetch(origin + "/healthz")).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`bridge on ${origin} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    origin,
    stop() {
      child.kill("SIGTERM");
      if (store === "redis") {
        const keys = execFileSync("redis-cli", ["-u", redisUrl, "--scan", "--pattern", `${prefix}:*`]).toString().split("\n").filter(Boolean);
        if (keys.length) execFileSync("redis-cli", ["-u", redisUrl, "DEL", ...keys]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** GET https://bridge.test:<port><path> on 127.0.0.1, trusting only `ca` (PEM). */
function getTrusting(ca, port, path, host = "bridge.test") {
  return new Promise((resolve, reject) => {
    const req = httpsGet({ host: "127.0.0.1", port, path, servername: host, headers: { host: `${host}:${port}` }, ca, timeout: 5_000 }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ ok: res.statusCode === 200, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timed out")));
  });
}

/** A port accepting connections on 127.0.0.1, within 20 s. */
async function listening(port, what) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = connect(port, "127.0.0.1", () => { socket.end(); resolve(true); });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * pebble (Let's Encrypt's test CA) and its DNS server, which answers 127.0.0.1 for every name;
 * it checks TLS-ALPN-01 at `tlsPort`. Its API's own certificate comes from a CA made here.
 */
async function startPebble(tlsPort) {
  const dir = mkdtempSync(join(tmpdir(), "qrb-pebble-"));
  const at = (name) => join(dir, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: "ignore" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl("req", "-x509", ...ec, "-days", "2", "-subj", "/CN=pebble API test CA", "-keyout", at("ca-key.pem"), "-out", at("ca.pem"));
  openssl("req", ...ec, "-subj", "/CN=localhost", "-keyout", at("key.pem"), "-out", at("csr.pem"));
  writeFileSync(at("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl("x509", "-req", "-in", at("csr.pem"), "-CA", at("ca.pem"), "-CAkey", at("ca-key.pem"), "-CAcreateserial", "-days", "2", "-extfile", at("ext.cnf"), "-out", at("cert.pem"));
  const [api, management, dns, dnsManagement, http] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  writeFileSync(at("pebble.json"), JSON.stringify({ pebble: {
    listenAddress: `127.0.0.1:${api}`, managementListenAddress: `127.0.0.1:${management}`,
    certificate: at("cert.pem"), privateKey: at("key.pem"), httpPort: http, tlsPort,
    ocspResponderURL: "", externalAccountBindingRequired: false,
  } }));
  const dnsServer = spawn("pebble-challtestsrv", ["-dns01", `127.0.0.1:${dns}`, "-management", `127.0.0.1:${dnsManagement}`,
    "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], { stdio: "ignore" });
  // No waits before validating, no nonces refused at random: the bridge is under test, not pebble.
  const ca = spawn("pebble", ["-config", at("pebble.json"), "-dnsserver", `127.0.0.1:${dns}`],
    { stdio: "ignore", env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" } });
  await listening(dns, "pebble-challtestsrv");
  await listening(api, "pebble");
  // Its management API opens a moment after the ACME one: asked too early, it refused the
  // connection and failed the whole HTTPS suite now and then.
  await listening(management, "pebble's management API");
  const apiCa = readFileSync(at("ca.pem"));
  // The root pebble issues from, made at its start: what the test browser will trust.
  const root = (await getTrusting(apiCa, management, "/roots/0", "localhost")).body;
  return {
    directory: `https://127.0.0.1:${api}/dir`,
    apiCa: at("ca.pem"),
    root,
    stop() {
      ca.kill("SIGTERM");
      dnsServer.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Chromium trusting `root` as a CA, the way a phone trusts a public one: in the NSS database of a
 * home of its own (certutil, from libnss3-tools), never by ignoring certificate errors (WebAuthn
 * refuses pages with those). `bridge.test` resolves to 127.0.0.1.
 */
async function browserTrusting(root) {
  const home = mkdtempSync(join(tmpdir(), "qrb-chromium-home-"));
  const nss = join(home, ".pki", "nssdb");
  mkdirSync(nss, { recursive: true });
  writeFileSync(join(home, "root.pem"), root);
  execFileSync("certutil", ["-d", `sql:${nss}`, "-N", "--empty-password"]);
  execFileSync("certutil", ["-d", `sql:${nss}`, "-A", "-t", "C,,", "-n", "pebble root", "-i", join(home, "root.pem")]);
  const trusting = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    env: { ...process.env, HOME: home },
    args: [...CHROMIUM_ARGS, "--host-resolver-rules=MAP bridge.test 127.0.0.1"],
  });
  return { browser: trusting, home };
}

/** A phone: a mobile context whose browser holds a virtual platform authenticator. */
async function newPhone(browser, extra = {}) {
  const context = await browser.newContext({ ...PHONE, ...extra });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { context, page };
}

async function newDesktop(browser) {
  const context = await browser.newContext(DESKTOP);
  return { context, page: await context.newPage() };
}

async function live(page) {
  await page.waitForSelector("body[data-hydrated]", { timeout: 30_000 });
}

/** Opens the desktop page and returns the link its QR code holds. */
async function codeOn(desktop, url) {
  await desktop.goto(url);
  await live(desktop);
  return (await desktop.getByTestId("qr-url").textContent()).trim();
}

/**
 * A new person: a desktop shows a code, a phone with no passkey creates one and approves. Returns
 * the signed-in desktop, the phone now holding the passkey, and the user id. `step` sees each stage.
 */
async function signUp(bridge, step = async () => {}, on = browser) {
  const desktop = await newDesktop(on);
  const phone = await newPhone(on);
  const link = await codeOn(desktop.page, bridge.origin + "/");
  assert.match(link, new RegExp(`^${bridge.origin}/bridge/[0-9a-f-]{36}$`));
  await step("1-desktop-code", desktop.page, null);

  await phone.page.goto(link);
  await live(phone.page);
  await phone.page.getByRole("heading", { name: "Acme Store wants to sign you in" }).waitFor();
  await phone.page.getByText("Chrome on macOS").waitFor();
  await desktop.page.getByText("Scanned — check your phone").waitFor();
  await step("2-approval", desktop.page, phone.page);

  await phone.page.getByTestId("approve").click();
  await phone.page.getByText("No passkey was used.").waitFor();
  await step("3-no-passkey", null, phone.page);
  await phone.page.getByTestId("create-passkey").click();
  await phone.page.getByTestId("approve").click();
  await phone.page.getByText("Done. You can close this window.").waitFor();

  await desktop.page.getByText("You're signed in").waitFor();
  const user = (await desktop.page.getByTestId("user-id").textContent()).trim();
  assert.match(user, /^usr_[0-9a-f]{32}$/);
  assert.ok(!(await desktop.page.content()).includes("eyJhbGciOiJSUzI1NiIsImtpZCI6"), "the whole token is never on the page");
  await step("4-signed-in", desktop.page, phone.page);
  return { desktop, phone, user };
}

async function shoot(store, name, desktop, phone) {
  mkdirSync(join(results, store), { recursive: true });
  if (desktop) await desktop.screenshot({ path: join(results, store, `${name}-desktop.png`) });
  if (phone) await phone.screenshot({ path: join(results, store, `${name}-phone.png`) });
}


/** The SDK's `client.bridge.complete` as it runs on the approving device (pin-bridge-contract.md §6), in `page`. */
async function completePairing(page, { prefix, id, pin, key, enrollment = null }) {
  return page.evaluate(async ({ prefix, id, pin, key, enrollment }) => {
    const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json", "X-Request-Id": crypto.randomUUID() };
    const call = async (method, path, body) => {
      const r = await fetch(prefix + path, { method, headers, body: body && JSON.stringify(body) });
      const json = await r.json();
      if (!json.ok) throw new Error(`${path}: ${json.error.code}`);
      return json.data;
    };
    const bytes = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    const text = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const context = await call("GET", `/context/${id}`);
    const verified = await call("POST", `/verify/${id}`, { pin });
    if (context.type === "auth") {
      const o = verified.authentication_options;
      const c = await navigator.credentials.get({ publicKey: { ...o, challenge: bytes(o.challenge),
        allowCredentials: (o.allowCredentials ?? []).map((a) => ({ ...a, id: bytes(a.id) })) } });
      const r = c.response;
      const credential = { id: c.id, rawId: text(c.rawId), type: "public-key", response: {
        authenticatorData: text(r.authenticatorData), clientDataJSON: text(r.clientDataJSON),
        signature: text(r.signature), userHandle: r.userHandle ? text(r.userHandle) : undefined } };
      return { context, data: await call("POST", "/complete", { session_id: id, credential }) };
    }
    const o = verified.registration_options;
    const c = await navigator.credentials.create({ publicKey: { ...o, challenge: bytes(o.challenge),
      user: { ...o.user, id: bytes(o.user.id) }, attestation: "none",
      excludeCredentials: (o.excludeCredentials ?? []).map((a) => ({ ...a, id: bytes(a.id) })) } });
    const registration_response = { id: c.id, rawId: text(c.rawId), type: "public-key", response: {
      clientDataJSON: text(c.response.clientDataJSON), attestationObject: text(c.response.attestationObject) } };
    return { context, data: await call("POST", "/complete", { session_id: id, ...enrollment, registration_response }) };
  }, { prefix, id, pin, key, enrollment });
}

/** The initiator's wait as the SDK's `waitForResult` does it first: an EventSource on the status URL, no headers. */
async function waitOnPairing(page, prefix, id) {
  await page.evaluate(({ prefix, id }) => {
    window.__pairing = new Promise((resolve, reject) => {
      const seen = [];
      const source = new EventSource(`${prefix}/status/${id}`);
      source.onmessage = (e) => {
        const { status } = JSON.parse(e.data);
        seen.push(status);
        if (["completed", "pin_locked", "expired", "cancelled"].includes(status)) { source.close(); resolve(seen); }
      };
      source.onerror = () => { source.close(); reject(new Error(`stream failed after ${seen.join(",")}`)); };
    });
  }, { prefix, id });
  return () => page.evaluate(() => window.__pairing);
}

async function api(bridge, method, path, { key = KEY, origin = bridge.origin, body } = {}) {
  const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
  if (origin) headers.Origin = origin;
  const r = await fetch(bridge.origin + path, { method, headers, body: body && JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: CHROMIUM_ARGS,
});

for (const store of ["memory", "redis"]) {
  describe(`QR Bridge on the ${store} store`, { concurrency: false }, () => {
    let bridge, shortLived, site, sitePort;
    before(async () => {
      // An integrator's own site, on another origin: a page with the widget, and its own
      // approval page for the PIN bridge (on localhost, so the passkeys' rp_id covers it).
      sitePort = await freePort();
      bridge = await startBridge({ store, ttl: "5m", alsoAllowed: [`http://127.0.0.1:${sitePort}`, `http://localhost:${sitePort}`] });
      site = createHttpServer((req, res) => {
        const page = req.url === "/approve"
          ? `<!doctype html><html lang="en"><title>Approve</title><h1>Approve on this phone</h1>`
          : `<!doctype html><html lang="fr"><title>Shop</title><h1>Shop</h1>
<script type="module" src="${bridge.origin}/widget/v1.js"></script>
<qr-bridge-signin publishable-key="${KEY}" app-id="demo"></qr-bridge-signin>`;
        res.writeHead(200, { "Content-Type": "text/html; charset=utf-8",
          "Content-Security-Policy": `default-src 'self'; script-src ${bridge.origin}; connect-src ${bridge.origin}; img-src ${bridge.origin}` });
        res.end(page);
      }).listen(sitePort, "127.0.0.1");
      shortLived = await startBridge({ store, ttl: "6s" });
    });
    after(() => {
      bridge?.stop();
      shortLived?.stop();
      site?.close();
    });

    // Every case makes its own desktop and phone, so any one runs alone or in any order.

    test("a first visit with no passkey creates one on the phone and signs the desktop in", async () => {
      const { desktop, phone } = await signUp(bridge, (name, d, p) => shoot(store, name, d, p));
      await desktop.context.close();
      await phone.context.close();
    });

    test("the passkey signs in again, and the desktop copes without its stream", async () => {
      const { desktop, phone, user } = await signUp(bridge);
      await desktop.context.close();
      // This desktop cannot open the stream: it must fall back to polling.
      const blocked = await newDesktop(browser);
      await blocked.context.route("**/login/*/events", (route) => route.abort());
      const link = await codeOn(blocked.page, bridge.origin + "/");
      await phone.page.goto(link);
      await live(phone.page);
      await phone.page.getByTestId("approve").click();
      await phone.page.getByText("Done. You can close this window.").waitFor();
      await blocked.page.getByText("You're signed in").waitFor({ timeout: 15_000 });
      assert.equal((await blocked.page.getByTestId("user-id").textContent()).trim(), user, "the same person");
      await shoot(store, "5-signed-in-again", blocked.page, phone.page);
      await blocked.context.close();
      await phone.context.close();
    });

    test("declining on the phone tells the desktop, after a sign-out", async () => {
      const { desktop, phone } = await signUp(bridge);
      await desktop.page.getByRole("button", { name: "Sign out" }).click();
      await desktop.page.getByTestId("qr-url").waitFor({ state: "attached" });
      const link = (await desktop.page.getByTestId("qr-url").textContent()).trim();
      await phone.page.goto(link);
      await live(phone.page);
      await phone.page.getByTestId("decline").click();
      await phone.page.getByText("Declined. You can close this window.").waitFor();
      await desktop.page.getByRole("heading", { name: "Sign-in declined" }).waitFor();
      await desktop.page.getByRole("button", { name: "Get a new code" }).waitFor();
      await shoot(store, "6-declined", desktop.page, phone.page);
      await desktop.context.close();
      await phone.context.close();
    });

    test("an expired code is shown as expired on both sides, and the desktop offers a new one", async () => {
      const d = await newDesktop(browser);
      const link = await codeOn(d.page, shortLived.origin + "/");
      await d.page.getByRole("heading", { name: "This code has expired" }).waitFor({ timeout: 15_000 });
      const p = await newPhone(browser);
      const response = await p.page.goto(link);
      assert.equal(response.status(), 410);
      await p.page.getByRole("heading", { name: "This code has expired" }).waitFor();
      await p.page.getByText("scan a new code").waitFor();
      await shoot(store, "7-expired", d.page, p.page);
      await d.page.getByRole("button", { name: "Get a new code" }).click();
      await d.page.getByTestId("qr-url").waitFor({ state: "attached" });
      assert.notEqual((await d.page.getByTestId("qr-url").textContent()).trim(), link);
      await d.context.close();
      await p.context.close();
    });

    test("the approval page is readable before its script runs", async () => {
      const d = await newDesktop(browser);
      const link = await codeOn(d.page, bridge.origin + "/");
      const context = await browser.newContext({ ...PHONE, javaScriptEnabled: false });
      const page = await context.newPage();
      await page.goto(link);
      await page.getByRole("heading", { name: "Acme Store wants to sign you in" }).waitFor();
      await page.getByText("Did not start this on your computer? Decline it.").waitFor();
      assert.equal(await page.getByTestId("approve").count(), 1);
      assert.equal(await page.getByTestId("decline").count(), 1);
      await shoot(store, "10-before-script", d.page, page);
      await context.close();
      await d.context.close();
    });

    test("a second phone cannot approve a request the first one opened", async () => {
      const { desktop: first, phone } = await signUp(bridge);
      await first.context.close();
      const d = await newDesktop(browser);
      const link = await codeOn(d.page, bridge.origin + "/");
      await phone.page.goto(link);
      await live(phone.page);
      const intruder = await newPhone(browser);
      const response = await intruder.page.goto(link);
      assert.equal(response.status(), 403);
      await intruder.page.getByRole("heading", { name: "This request is open on another device" }).waitFor();
      assert.equal(await intruder.page.getByTestId("approve").count(), 0);
      // Nor can it go round the page through the API with the public key.
      const api = await intruder.page.evaluate(async ({ id, key }) => {
        const r = await fetch(`/v1/auth/cross-device/deny/${id}`, { method: "POST", headers: { Authorization: `Bearer ${key}` } });
        return { status: r.status, body: await r.json() };
      }, { id: link.split("/").pop(), key: KEY });
      assert.equal(api.status, 403);
      assert.equal(api.body.error.code, "forbidden");
      await shoot(store, "8-second-phone", d.page, intruder.page);
      // The first phone is still in charge.
      await phone.page.getByTestId("approve").click();
      await phone.page.getByText("Done. You can close this window.").waitFor();
      await d.page.getByText("You're signed in").waitFor();
      await d.context.close();
      await intruder.context.close();
      await phone.context.close();
    });

    test("a page on another origin cannot frame the approval page, and no script runs without its nonce", async () => {
      const started = await fetch(bridge.origin + "/v1/auth/cross-device/init", {
        method: "POST",
        headers: { Authorization: `Bearer ${KEY}`, Origin: bridge.origin, "Content-Type": "application/json" },
        body: "{}",
      }).then((r) => r.json());
      const target = `${bridge.origin}/bridge/${started.data.session_id}`;
      // The attacker's page, on another origin (another port of 127.0.0.1).
      const port = await freePort();
      const server = createHttpServer((req, res) => {
        res.writeHead(200, { "Content-Type": "text/html" });
        res.end(`<!doctype html><title>Win a prize</title><iframe id="f" src="${target}" width="400" height="600"></iframe>`);
      }).listen(port, "127.0.0.1");
      try {
        const p = await newPhone(browser);
        const refusals = [];
        p.page.on("console", (m) => refusals.push(m.text()));
        await p.page.goto(`http://127.0.0.1:${port}/`);
        await p.page.waitForTimeout(1500);
        const frame = p.page.frames().find((f) => f !== p.page.mainFrame());
        const shown = frame ? await frame.evaluate(() => document.body?.innerText ?? "").catch(() => "") : "";
        assert.ok(!shown.includes("wants to sign you in"), `the approval page rendered inside the frame: ${shown}`);
        assert.ok(refusals.some((t) => t.includes("frame-ancestors")), `Chromium names the refusal: ${refusals.join(" | ")}`);
        // Opened directly, the same page hydrates under its policy, and a script without the nonce is blocked.
        await p.page.goto(target);
        await live(p.page);
        const policy = (await p.page.request.get(target)).headers()["content-security-policy"];
        assert.match(policy, /script-src 'self' 'nonce-[A-Za-z0-9_-]+' 'wasm-unsafe-eval'/);
        const ran = await p.page.evaluate(() => new Promise((resolve) => {
          window.__injected = false;
          const s = document.createElement("script");
          s.textContent = "window.__injected = true";
          document.body.appendChild(s);
          setTimeout(() => resolve(window.__injected), 200);
        }));
        assert.equal(ran, false, "an injected inline script does not run");
        await p.context.close();
      } finally {
        server.close();
      }
    });

    test("the PIN auth bridge signs the approving phone in, and the initiator sees it end", async () => {
      const { desktop, phone, user } = await signUp(bridge);
      const started = await api(bridge, "POST", "/v1/auth-bridge/init", { body: {} });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const { session_id: id, pin } = started.body.data;
      assert.match(pin, /^[0-9]{6}$/);
      const ended = await waitOnPairing(desktop.page, "/v1/auth-bridge", id);
      await phone.page.goto(`http://localhost:${sitePort}/approve`);
      const done = await completePairing(phone.page, { prefix: `${bridge.origin}/v1/auth-bridge`, id, pin, key: KEY });
      assert.equal(done.context.type, "auth");
      const seen = await ended();
      assert.equal(seen.at(-1), "completed", seen.join(","));
      assert.ok(!seen.includes("pin_locked"));
      const valid = await fetch(bridge.origin + "/v1/sessions/validate", { headers: { Authorization: `Bearer ${done.data.session_token}` } }).then((r) => r.json());
      assert.equal(valid.data.user_id, user, "the phone's own account");
      await desktop.context.close();
      await phone.context.close();
    });

    test("the PIN enrollment bridge puts a new passkey on a second phone for the person the backend named", async () => {
      const entity = `emp-${randomBytes(4).toString("hex")}`;
      const contextHash = randomBytes(32).toString("hex");
      const started = await api(bridge, "POST", "/v1/enrollment-bridge/init", { key: SECRET, origin: null, body: { entity_id: entity, context_hash: contextHash } });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const { session_id: id, pin, ticket_id } = started.body.data;
      const desktop = await newDesktop(browser);
      await desktop.page.goto(bridge.origin + "/");
      const ended = await waitOnPairing(desktop.page, "/v1/enrollment-bridge", id);
      const phone = await newPhone(browser);
      await phone.page.goto(`http://localhost:${sitePort}/approve`);
      const done = await completePairing(phone.page, { prefix: `${bridge.origin}/v1/enrollment-bridge`, id, pin, key: KEY,
        enrollment: { ticket_id, entity_id: entity, context_hash: contextHash } });
      assert.equal(done.context.type, "registration");
      assert.equal(done.data.entity_id, entity);
      assert.equal((await ended()).at(-1), "completed");
      // The new passkey signs that person in through the approval page.
      const link = await codeOn(desktop.page, bridge.origin + "/");
      await phone.page.goto(link);
      await live(phone.page);
      await phone.page.getByTestId("approve").click();
      await phone.page.getByText("Done. You can close this window.").waitFor();
      await desktop.page.getByText("You're signed in").waitFor();
      assert.equal((await desktop.page.getByTestId("user-id").textContent()).trim(), done.data.user_id);
      await desktop.context.close();
      await phone.context.close();
    });

    test("the sign-in widget on a page of another origin signs in and hands the page the token", async () => {
      const { desktop: first, phone, user } = await signUp(bridge);
      await first.context.close();
      {
        const d = await newDesktop(browser);
        await d.page.goto(`http://127.0.0.1:${sitePort}/`);
        const widget = d.page.locator("qr-bridge-signin");
        await widget.getByRole("heading", { name: "Connectez-vous avec votre téléphone" }).waitFor();
        const link = widget.getByRole("link");
        await link.waitFor();
        const href = await link.getAttribute("href");
        assert.match(href, new RegExp(`^${bridge.origin}/bridge/[0-9a-f-]{36}$`));
        await d.page.waitForFunction(() => {
          const img = document.querySelector("qr-bridge-signin").shadowRoot.querySelector("img");
          return img.complete && img.naturalWidth > 0;
        });
        await d.page.evaluate(() => {
          window.__signin = new Promise((resolve) => document.querySelector("qr-bridge-signin").addEventListener("signin", (e) => resolve(e.detail)));
        });
        await phone.page.goto(href);
        await live(phone.page);
        await widget.getByText("Code scanné — regardez votre téléphone").waitFor();
        await shoot(store, "11-widget-scanned", d.page, null);
        await phone.page.getByTestId("approve").click();
        await phone.page.getByText("Done. You can close this window.").waitFor();
        const detail = await d.page.evaluate(() => window.__signin);
        await widget.getByText("Vous êtes connecté").waitFor();
        await shoot(store, "12-widget-signed-in", d.page, phone.page);
        assert.equal(detail.userId, user);
        const valid = await fetch(bridge.origin + "/v1/sessions/validate", { headers: { Authorization: `Bearer ${detail.sessionToken}` } }).then((r) => r.json());
        assert.equal(valid.data.user_id, user);
        assert.equal(valid.data.app_id, "demo");
        await d.context.close();
        await phone.context.close();
      }
    });

    test("an approval message with markup is shown as text", async () => {
      const payload = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script> Pay "20 €" & <b>now</b>`;
      const started = await fetch(bridge.origin + "/v1/auth/cross-device/init", {
        method: "POST",
        headers: { Authorization: `Bearer ${KEY}`, Origin: bridge.origin, "Content-Type": "application/json" },
        body: JSON.stringify({ approval_context: payload }),
      }).then((r) => r.json());
      const p = await newPhone(browser, { colorScheme: "dark" });
      // The same page answers at /mobile-auth?session_id=…, the address integrators' own pages use.
      await p.page.goto(`${bridge.origin}/mobile-auth?session_id=${started.data.session_id}`);
      await live(p.page);
      const shown = p.page.getByTestId("approval-context");
      assert.equal((await shown.textContent()).trim(), payload);
      assert.equal(await shown.locator("img, script, b").count(), 0, "no element came from the message");
      assert.equal(await p.page.evaluate(() => window.__pwned), undefined);
      await shoot(store, "9-message-as-text-dark", null, p.page);
      await p.context.close();
    });
  });
}

// What a phone needs: HTTPS with a certificate it trusts. The bridge gets one from pebble by
// itself (ACME, TLS-ALPN-01), and the browser trusts pebble's root as it would a public CA's.
describe("QR Bridge over HTTPS, its certificate from an ACME server (pebble)", { concurrency: false }, () => {
  let pebble, bridge, trusting;
  before(async () => {
    const port = await freePort();
    pebble = await startPebble(port);
    bridge = await startBridge({ store: "memory", ttl: "5m", acme: pebble, port });
    trusting = await browserTrusting(pebble.root);
  });
  after(async () => {
    await trusting?.browser.close();
    if (trusting) rmSync(trusting.home, { recursive: true, force: true });
    bridge?.stop();
    pebble?.stop();
  });

  test("a first visit creates a passkey on the phone and signs the desktop in, over HTTPS", async () => {
    const { desktop, phone } = await signUp(bridge, (name, d, p) => shoot("https", name, d, p), trusting.browser);
    assert.ok(desktop.page.url().startsWith("https://bridge.test:"), desktop.page.url());
    const security = await (await phone.context.newCDPSession(phone.page)).send("Runtime.evaluate", { expression: "window.isSecureContext", returnByValue: true });
    assert.equal(security.result.value, true, "the approval page is a secure context");
    await desktop.context.close();
    await phone.context.close();
  });
});

after(async () => {
  await browser.close();
});
