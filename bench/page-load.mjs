// The pages on a slow phone: Chromium under Lighthouse's mobile profile (4x CPU slowdown, 150 ms
// round trip, 1.6 Mbit/s down, 750 kbit/s up, no cache), median of 5 loads of a fresh session each:
// first contentful paint, time until the page is live (body[data-hydrated]), and bytes on the
// wire. Run by hand after `cargo leptos build --release`: node bench/page-load.mjs [--loads 5]
// It starts target/release/qr-bridge (QR_BRIDGE_BIN to change) on the embedded store, prints a table
// and (not with --identity) writes bench/page-load.json, which bench/run's harness puts in RESULTS.md.

import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const { chromium } = createRequire(join(root, "end2end/package.json"))("playwright-core");
const binary = process.env.QR_BRIDGE_BIN ?? join(root, "target/release/qr-bridge");
const loads = Number(process.argv[process.argv.indexOf("--loads") + 1]) || 5;
// --identity: the browser refuses compression, as if the bridge had none (the "before" figure).
const identity = process.argv.includes("--identity");
const KEY = "cli_bench_publishable_key_0001";

/** Lighthouse's mobile profile ("Slow 4G" and a mid-range phone's CPU). */
const PROFILE = { latency: 150, down: (1.6 * 1024 * 1024) / 8, up: (750 * 1024) / 8, cpu: 4 };

const port = await new Promise((resolve) => {
  const server = createServer().listen(0, "127.0.0.1", () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});
const origin = `http://localhost:${port}`;
const dir = mkdtempSync(join(tmpdir(), "qrb-page-load-"));
writeFileSync(join(dir, "bridge.toml"), `
addr = "127.0.0.1:${port}"
public_origin = "${origin}"
data_dir = "${join(dir, "data")}"
home_app = "bench"
[limits]
init_per_client = "1000/1m"
[[apps]]
id = "bench"
name = "Acme Store"
publishable_key = "${KEY}"
secret_key_sha256 = "${"0".repeat(64)}"
allowed_origins = ["${origin}"]
rp_id = "localhost"
`);
const bridge = spawn(binary, ["--config", join(dir, "bridge.toml"), "serve"], {
  cwd: root,
  env: { ...process.env, LEPTOS_SITE_ROOT: join(root, "target/site"), RUST_LOG: "warn" },
  stdio: ["ignore", "inherit", "inherit"],
});
for (let tries = 0; ; tries++) {
  try {
    if ((await fetch(`${origin}/healthz`)).ok) break;
  } catch {}
  if (tries > 200) throw new Error("the bridge did not start");
  await new Promise((r) => setTimeout(r, 100));
}

async function phoneUrl() {
  const response = await fetch(`${origin}/v1/auth/cross-device/init`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, origin, "content-type": "application/json" },
    body: "{}",
  });
  return (await response.json()).data.qr_url;
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });

/** One cold load of `url` under the profile: { paint, live, bytes }. */
async function load(url, mobile) {
  const context = await browser.newContext(mobile ? { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true } : {});
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false, latency: PROFILE.latency, downloadThroughput: PROFILE.down, uploadThroughput: PROFILE.up,
  });
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: PROFILE.cpu });
  if (identity) await cdp.send("Network.setExtraHTTPHeaders", { headers: { "accept-encoding": "identity" } });
  let bytes = 0;
  cdp.on("Network.loadingFinished", (event) => (bytes += event.encodedDataLength));
  await page.addInitScript(() => {
    new MutationObserver(() => {
      if (document.body?.hasAttribute("data-hydrated") && !window.__live) window.__live = performance.now();
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-hydrated"] });
  });
  await page.goto(url, { waitUntil: "commit" });
  await page.waitForFunction(() => window.__live, null, { timeout: 60_000 });
  // Whatever is still on its way (a late asset) counts too.
  await page.waitForLoadState("networkidle");
  const [paint, live] = await page.evaluate(() => [
    performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
    window.__live,
  ]);
  await context.close();
  return { paint, live, bytes };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const figures = {};
for (const [name, url, mobile] of [["phone", null, true], ["desktop", `${origin}/`, false]]) {
  const runs = [];
  for (let i = 0; i < loads; i++) runs.push(await load(url ?? (await phoneUrl()), mobile));
  figures[name] = {
    paint_ms: Math.round(median(runs.map((r) => r.paint))),
    live_ms: Math.round(median(runs.map((r) => r.live))),
    bytes: median(runs.map((r) => r.bytes)),
    runs,
  };
}
await browser.close();
bridge.kill("SIGTERM");
rmSync(dir, { recursive: true, force: true });

const measured = { at: new Date().toISOString(), profile: PROFILE, loads, identity, figures };
if (!identity) writeFileSync(join(here, "page-load.json"), JSON.stringify(measured, null, 2) + "\n");
const table = [
  "| page | first paint ms | live ms | live / paint | KB on the wire |",
  "|---|---|---|---|---|",
  ...Object.entries(figures).map(([name, f]) =>
    `| ${name} | ${f.paint_ms} | ${f.live_ms} | ${(f.live_ms / f.paint_ms).toFixed(2)} | ${(f.bytes / 1024).toFixed(0)} |`),
];
console.log(table.join("\n"));
