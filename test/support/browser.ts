// Browser tests: Debian's Chromium driven by playwright-core, the dashboard's origin, screenshots
// and the dashboard's size and render-time metrics.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { webAppHandler } from "../../orchestrator/src/web/static-handler.js";
import { repoRoot } from "./tools.js";

export const chromiumPath = process.env.K8SDEPLOY_CHROMIUM ?? "/usr/bin/chromium";
export const webDist = path.join(repoRoot, "web", "dist");
export const outputDir = path.join(repoRoot, "test-output");
export const screenshotDir = path.join(outputDir, "screenshots");

/**
 * Flags for a quiet, sandbox-free headless Chromium in a container. Playwright adds a fresh
 * temporary --user-data-dir itself (it refuses one in `args`), so every launch starts clean.
 */
export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function browserPreflight(): void {
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: apt-get install -y chromium (or set K8SDEPLOY_CHROMIUM)`);
  }
  if (!existsSync(path.join(webDist, "index.html"))) {
    throw new Error(`${webDist}/index.html is missing: run \`npm run build\` (it builds the dashboard)`);
  }
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true, timeout: 60_000 });
}

export type Theme = "light" | "dark";

/** A page that records console errors and uncaught exceptions. */
export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and page errors so far. */
  problems: string[];
}

export async function openPage(
  browser: Browser,
  options: { width?: number; height?: number; colorScheme?: Theme; adminToken?: string } = {},
): Promise<WatchedPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 860 },
    colorScheme: options.colorScheme ?? "light",
    reducedMotion: "reduce",
  });
  if (options.adminToken) {
    // Signed in from the first request: sessionStorage is per tab, so set it before any script.
    await context.addInitScript((token: string) => {
      sessionStorage.setItem("k8sdeploy.adminToken", token);
    }, options.adminToken);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  return { context, page, problems };
}

/** Switches the theme with the dashboard's own toggle (the choice persists in localStorage). */
export async function useTheme(page: Page, theme: Theme): Promise<void> {
  const current = await page.evaluate(() => document.documentElement.dataset.theme);
  if (current !== theme) await page.click("[data-testid=theme-toggle]");
  await page.waitForFunction((t) => document.documentElement.dataset.theme === t, theme);
}

/** Saves test-output/screenshots/<name>-<theme>.png (full page). */
export async function screenshot(page: Page, name: string, theme: Theme): Promise<string> {
  await mkdir(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${name}-${theme}.png`);
  await page.screenshot({ path: file, fullPage: true, animations: "disabled" });
  return file;
}

/** Horizontal overflow of the document in CSS pixels (0 when the page fits the viewport). */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/** A same-origin front for the dashboard with a switch to simulate network trouble. */
export interface TestFront {
  url: string;
  /** API requests seen (path and request body), oldest first. */
  requests: { path: string; body: string; at: number }[];
  /** While true, API requests fail at the socket level (like a dropped network). */
  setOffline(offline: boolean): void;
  /** Destroys every open API connection (streams end with a network error in the browser). */
  cutConnections(): void;
  close(): Promise<void>;
}

/**
 * Serves web/dist with the orchestrator's own static handler and forwards every other request
 * (the Connect API, streams included) to the orchestrator's HTTP port.
 */
export async function startTestFront(httpAddress: string): Promise<TestFront> {
  const colon = httpAddress.lastIndexOf(":");
  const host = httpAddress.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(httpAddress.slice(colon + 1));
  const serveApp = webAppHandler(webDist);
  const requests: TestFront["requests"] = [];
  const open = new Set<http.ServerResponse>();
  let offline = false;
  const server = http.createServer((req, res) => {
    if (serveApp(req, res)) return;
    if (offline) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    const entry = { path: req.url ?? "", body: "", at: Date.now() };
    requests.push(entry);
    const upstream = http.request({ host, port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    open.add(res);
    res.on("close", () => {
      open.delete(res);
      upstream.destroy();
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      entry.body = Buffer.concat(chunks).toString("latin1");
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: frontPort } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${frontPort}`,
    requests,
    setOffline: (value) => {
      offline = value;
    },
    cutConnections: () => {
      for (const res of open) res.socket?.destroy();
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The dashboard's origin: the orchestrator's HTTP port when it serves the app (GET / is HTML),
 * else a test front (startTestFront) in this process.
 */
export async function dashboardOrigin(
  httpAddress: string,
): Promise<{ url: string; mode: "orchestrator" | "test-front"; close(): Promise<void> }> {
  const direct = `http://${httpAddress}`;
  const probe = await fetch(`${direct}/`).catch(() => undefined);
  const html = probe?.ok === true && /text\/html/.test(probe.headers.get("content-type") ?? "");
  await probe?.arrayBuffer().catch(() => {});
  if (html) return { url: direct, mode: "orchestrator", close: async () => {} };
  const front = await startTestFront(httpAddress);
  return { url: front.url, mode: "test-front", close: front.close };
}

export interface BundleSize {
  files: { file: string; bytes: number; gzipBytes: number }[];
  totalBytes: number;
  totalGzipBytes: number;
}

/** Size of what the first load fetches: index.html and the assets it references (gzip -9). */
export function bundleSize(): BundleSize {
  const html = readFileSync(path.join(webDist, "index.html"));
  const refs = [...html.toString().matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((m) => m[1] as string);
  const files = ["index.html", ...new Set(refs)].map((file) => {
    const body = readFileSync(path.join(webDist, file));
    return { file, bytes: body.length, gzipBytes: gzipSync(body, { level: 9 }).length };
  });
  return {
    files,
    totalBytes: files.reduce((n, f) => n + f.bytes, 0),
    totalGzipBytes: files.reduce((n, f) => n + f.gzipBytes, 0),
  };
}

export interface RenderTiming {
  /** Navigation start → first contentful paint (ms). */
  firstContentfulPaintMs: number | null;
  /** → the app shell rendered (mark `k8sdeploy:app-rendered`). */
  appRenderedMs: number | null;
  /** → the page's first data on screen (mark `k8sdeploy:first-content`). */
  firstContentMs: number | null;
  /** → DOMContentLoaded. */
  domContentLoadedMs: number | null;
}

/** Loads `url` in a fresh context (cold cache) and reads the navigation and paint timings. */
export async function measureFirstRender(browser: Browser, url: string, adminToken?: string): Promise<RenderTiming> {
  const { context, page } = await openPage(browser, adminToken ? { adminToken } : {});
  try {
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => performance.getEntriesByName("k8sdeploy:first-content").length > 0);
    // A string, not a function: tsx would wrap inner functions in a `__name` helper the page lacks.
    return (await page.evaluate(`(() => {
      const at = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null;
      const nav = performance.getEntriesByType("navigation")[0];
      return {
        firstContentfulPaintMs: at("first-contentful-paint"),
        appRenderedMs: at("k8sdeploy:app-rendered"),
        firstContentMs: at("k8sdeploy:first-content"),
        domContentLoadedMs: nav ? nav.domContentLoadedEventEnd : null,
      };
    })()`)) as RenderTiming;
  } finally {
    await context.close();
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export async function writeMetrics(data: unknown): Promise<string> {
  await mkdir(outputDir, { recursive: true });
  const file = path.join(outputDir, "web-metrics.json");
  await writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}
