// `/docs` works with the network off: in headless Chromium, with every request that leaves the
// shop's origin refused (and recorded), the page must render one entry per operation of the
// shop's OpenAPI document, with no script error and no Content-Security-Policy violation.
//
//   node tests/browser/docs.mjs http://127.0.0.1:8080 [screenshot.png]
//
// CHROMIUM names the browser (default /usr/bin/chromium); `bash .ci/run docs-browser` installs
// it and starts a shop.
import { chromium } from "playwright-core";

const [shop, screenshot] = process.argv.slice(2);
if (!shop) {
  console.error("usage: node docs.mjs SHOP_URL [SCREENSHOT.png]");
  process.exit(2);
}
const origin = new URL(shop).origin;
const fail = (message) => {
  console.error(`docs check failed: ${message}`);
  process.exitCode = 1;
};

// What the page should list: every (path, method) of the merged document.
const methods = new Set(["get", "put", "post", "delete", "options", "head", "patch", "trace"]);
const document = await (await fetch(`${origin}/openapi.json`)).json();
const operations = Object.values(document.paths).flatMap((item) =>
  Object.keys(item).filter((key) => methods.has(key)),
).length;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // No name resolves: the network is off for the page, whatever the machine has.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const offOrigin = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin || url.startsWith("data:")) return route.continue();
    offOrigin.push(url);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`script error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });

  const response = await page.goto(`${origin}/docs`, { waitUntil: "load" });
  if (!response?.ok()) fail(`/docs answered ${response?.status()}`);
  const policy = response?.headers()["content-security-policy"] ?? "";
  if (!policy.includes("default-src 'none'")) fail(`no same-origin policy on /docs: '${policy}'`);

  const entries = page.locator(".opblock");
  try {
    await page.waitForFunction((n) => document.querySelectorAll(".opblock").length >= n, operations, {
      timeout: 30_000,
    });
  } catch {
    fail(`the page shows ${await entries.count()} operations after 30 s; the document has ${operations}`);
  }
  const shown = await entries.count();
  if (shown !== operations) fail(`the page shows ${shown} operations; the document has ${operations}`);
  // One operation by name, as a reader would look for it.
  const login = await page.locator(".opblock-summary-path", { hasText: "/api/v1/auth/login" }).count();
  if (login !== 1) fail(`POST /api/v1/auth/login appears ${login} times`);

  if (screenshot) await page.screenshot({ path: screenshot, fullPage: false });
  if (offOrigin.length) fail(`requests off the shop's origin: ${offOrigin.join(", ")}`);
  if (problems.length) fail(problems.join("\n"));
  if (!process.exitCode) console.log(`docs: ${shown} operations rendered offline, no request off ${origin}, no error`);
} finally {
  await browser.close();
}
