// A shopper's journey through the storefront in headless Chromium, three times: at a desktop
// width, at a phone's (375×812), and with JavaScript disabled. Each signs up, searches, opens a
// product, adds two products, changes a quantity, checks out with a new address, finds the
// order in the history, cancels it and sees the stock back. axe-core checks every page (zero
// serious or critical violations); every page is saved as a screenshot in SCREENSHOT_DIR.
//
//   node tests/browser/storefront.mjs http://127.0.0.1:8080 SCREENSHOT_DIR
//
// The shop must hold the demo catalog (`mercato up` without --no-seed). CHROMIUM names the
// browser (default /usr/bin/chromium); `bash .ci/run storefront-browser` installs it and
// starts a shop.
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const [shop, shots] = process.argv.slice(2);
if (!shop || !shots) {
  console.error("usage: node storefront.mjs SHOP_URL SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const origin = new URL(shop).origin;
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const failures = [];
const fail = (message) => {
  failures.push(message);
  console.error(`storefront check failed: ${message}`);
};
const expect = (condition, message) => condition || fail(message);

const stockOf = async (id) => (await (await fetch(`${origin}/api/v1/products/${id}`)).json()).stock;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
});

async function journey(variant, options) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`script error: ${error.message}`));
  page.on("console", (message) => message.type() === "error" && problems.push(`console: ${message.text()}`));
  let step = 0;
  const look = async (name) => {
    step += 1;
    await page.screenshot({ path: `${shots}/${variant}-${String(step).padStart(2, "0")}-${name}.png`, fullPage: true });
    expect(!(await page.content()).includes("urn:mercato:problem"), `${variant} ${name}: a raw problem document`);
    if (options.javaScriptEnabled === false) return; // the same HTML is checked by the other runs
    await page.evaluate(axeSource);
    const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
    for (const v of result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")) {
      fail(`${variant} ${name}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
    }
    if (options.viewport.width <= 375) {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(wide <= options.viewport.width, `${variant} ${name}: the page is ${wide}px wide at ${options.viewport.width}px`);
    }
  };
  const go = async (path, name) => {
    const response = await page.goto(`${origin}${path}`);
    expect(response?.ok(), `${variant}: ${path} answered ${response?.status()}`);
    const policy = response?.headers()["content-security-policy"] ?? "";
    expect(policy.includes("script-src 'self'") && !policy.includes("unsafe-inline"), `${variant}: ${path} CSP ${policy}`);
    await look(name);
  };
  const submit = async (button, name) => {
    await Promise.all([page.waitForLoadState("load"), button.click()]);
    await page.waitForLoadState("load");
    await look(name);
  };

  await go("/", "home");
  const firstCard = page.locator(".product-grid .card a").first();
  const firstName = (await firstCard.locator(".card-name").innerText()).trim();
  const secondHref = await page.locator(".product-grid .card a").nth(1).getAttribute("href");

  await page.getByRole("link", { name: "Sign up" }).click();
  await look("signup");
  await page.getByLabel("Name", { exact: true }).fill("Journey Shopper");
  await page.getByLabel("Email", { exact: true }).fill(`${variant}-${Date.now()}@shop.test`);
  await page.getByLabel("Password", { exact: true }).fill("a good password");
  await submit(page.getByRole("button", { name: "Create an account" }), "signed-up");
  expect(await page.getByRole("link", { name: /Account/ }).isVisible(), `${variant}: signed in after sign-up`);

  await page.getByLabel("Search products").fill(firstName.split(" ").slice(0, 2).join(" "));
  await submit(page.getByRole("button", { name: "Search", exact: true }), "search");
  const result = page.locator(".product-grid .card a", { hasText: firstName }).first();
  const firstHref = await result.getAttribute("href");
  expect(firstHref?.startsWith("/p/"), `${variant}: the search finds ${firstName}`);
  await submit(result, "product");
  const firstId = firstHref.slice(3);
  const secondId = secondHref.slice(3);
  const before = [await stockOf(firstId), await stockOf(secondId)];
  await submit(page.getByRole("button", { name: "Add to cart" }), "cart-one");

  await go(secondHref, "second-product");
  await submit(page.getByRole("button", { name: "Add to cart" }), "cart-two");
  expect((await page.locator("table.lines tbody tr").count()) === 2, `${variant}: two lines in the cart`);

  const row = page.locator("table.lines tbody tr", { has: page.locator(`a[href="${firstHref}"]`) });
  await row.locator('input[name="quantity"]').fill("2");
  await submit(row.getByRole("button", { name: "Update" }), "quantity-changed");
  expect((await row.locator('input[name="quantity"]').inputValue()) === "2", `${variant}: the quantity is 2`);

  await submit(page.getByRole("link", { name: "Check out" }), "checkout");
  await page.getByLabel("Address", { exact: true }).fill("1 Journey Road");
  await page.getByLabel("City", { exact: true }).fill("Springfield");
  await page.getByLabel("Postal code", { exact: true }).fill("12345");
  await page.getByLabel(/^Country/).fill("US");
  await submit(page.getByRole("button", { name: "Add address" }), "checkout-address");
  await submit(page.getByRole("button", { name: "Place order" }), "order-placed");
  expect(page.url().includes("/orders/"), `${variant}: placing the order shows it (${page.url()})`);
  expect(await page.getByText("Your order is placed").isVisible(), `${variant}: a confirmation`);
  expect((await stockOf(firstId)) === before[0] - 2, `${variant}: two taken from stock`);

  await go("/orders", "orders");
  const orderLinks = page.locator('table.lines a[href^="/orders/"]');
  expect((await orderLinks.count()) === 1, `${variant}: one order in the history`);
  await submit(orderLinks.first(), "order");
  await submit(page.getByRole("button", { name: "Cancel this order" }), "order-cancelled");
  expect(await page.getByText("Your order is cancelled").isVisible(), `${variant}: cancelled`);
  expect((await stockOf(firstId)) === before[0] && (await stockOf(secondId)) === before[1], `${variant}: the stock is back`);

  await go("/account", "account");
  expect(problems.length === 0, `${variant}: ${problems.join("; ")}`);
  await context.close();
  console.log(`storefront journey (${variant}): ${step} pages`);
}

let passed = 0;
let failed = 0;
try {
  for (const [variant, options] of [
    ["desktop", { viewport: { width: 1280, height: 900 } }],
    ["phone", { viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true }],
    ["no-js", { viewport: { width: 1280, height: 900 }, javaScriptEnabled: false }],
  ]) {
    const before = failures.length;
    try {
      await journey(variant, options);
    } catch (error) {
      fail(`${variant}: ${error.stack ?? error}`);
    }
    if (failures.length === before) passed += 1;
    else failed += 1;
  }
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
if (failed) process.exitCode = 1;
