// `node bench/browser.mjs [runs]`: what the browser check (`browser: true`) adds to
// `verifyPreview`, for a Vite React app and a Next.js app (real installs and dev servers in
// sandboxes of the embedded backend, real headless Chromium). Each round verifies the same
// running preview three ways, back to back: HTTP only (the peer), with the browser already
// running (warm), and with the browser closed first (cold: Chromium's start included).
// Figures: median and p90 of (with browser − HTTP only) per round, and the ratio of the
// medians. Goal: ≤ 1.5 s added, warm. After each check the browser disposes of the check's
// tab and opens the next one in the background: the round pauses (SETTLE_MS) after each
// browser check so that this work is not counted in the next HTTP-only measurement (which it
// would slow down, making the difference look smaller than it is).
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'
import { writeSection } from './readme.mjs'
import { median, p90 } from './stats.mjs'

const require = createRequire(import.meta.url)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const ownHome = !process.env.FORGE_HOME
process.env.FORGE_HOME ??= mkdtempSync(join(tmpdir(), 'forge-bench-browser-home-'))
process.env.FORGE_STOP_SANDBOXES_ON_EXIT = '1'
const { Daytona, closePreviewBrowser } = require(join(root, 'index.js'))

const RUNS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? process.env.BROWSER_RUNS ?? 7)
const TOKEN = 'bench_token_0123456789'
const GOAL_MS = 1500
const SETTLE_MS = 1500
const pause = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS))

const APPS = {
  'Vite (React 18)': {
    'package.json': JSON.stringify({
      name: 'bench-vite', private: true, type: 'module', scripts: { dev: 'vite' },
      dependencies: { react: '18.3.1', 'react-dom': '18.3.1' }, devDependencies: { vite: '5.4.11' },
    }),
    'index.html': '<!doctype html><html><head><title>bench</title></head><body><div id="root"></div><script type="module" src="/src/main.js"></script></body></html>\n',
    'src/main.js': "import React from 'react'\nimport { createRoot } from 'react-dom/client'\ncreateRoot(document.getElementById('root')).render(React.createElement('h1', null, 'hello from vite'))\n",
  },
  'Next.js 15 (app router)': {
    'package.json': JSON.stringify({
      name: 'bench-next', private: true, scripts: { dev: 'next dev' },
      dependencies: { next: '15.5.6', react: '19.2.0', 'react-dom': '19.2.0' },
    }),
    'next.config.mjs': 'export default { eslint: { ignoreDuringBuilds: true } }\n',
    'app/layout.js': 'export default function RootLayout({ children }) { return <html><body>{children}</body></html> }\n',
    'app/page.js': 'export default function Page() { return <h1>hello from next</h1> }\n',
  },
}


async function timed(f) {
  const t0 = performance.now()
  const v = await f()
  return { ms: performance.now() - t0, v }
}

const repos = mkdtempSync(join(tmpdir(), 'forge-bench-browser-repos-'))
// `--only=vite` / `--only=next`: one app (a Next.js install and first compile take minutes).
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).toLowerCase()
const names = Object.keys(APPS).filter((n) => !only || n.toLowerCase().startsWith(only))
names.forEach((name, i) => createRepo(repos, `app${i}.git`, 'main', APPS[name]))
const git = await startGitHttp(repos, null, TOKEN)
const daytona = new Daytona({ backend: 'local' })
const rows = []
const loadAtStart = loadavg()[0].toFixed(1)
try {
  for (const [i, name] of names.entries()) {
    const r = await daytona.cloneAndPreview({ repoUrl: git.url(`app${i}.git`), token: TOKEN })
    try {
      const verify = (browser) =>
        timed(() => daytona.verifyPreview({ sandboxId: r.sandboxId, port: r.port, sessionId: r.sessionId, commandId: r.commandId, browser }))
      // Warm-up: the dev server's first browser load compiles what the page imports.
      const first = await verify(true)
      await pause()
      if (!first.v.browser?.ok) throw new Error(`${name}: the browser check failed: ${JSON.stringify(first.v.browser)}`)
      const http = []
      const warm = []
      const cold = []
      for (let run = 0; run < RUNS; run++) {
        const h = await verify(false)
        const w = await verify(true)
        await pause()
        await closePreviewBrowser()
        const c = await verify(true)
        await pause()
        if (!w.v.browser.warm) throw new Error(`round ${run}: the warm run found no running browser: ${JSON.stringify({ ...w.v.browser, screenshot: undefined })}`)
        if (c.v.browser.warm) throw new Error(`round ${run}: the cold run found a running browser`)
        http.push(h.ms)
        warm.push(w.ms - h.ms)
        cold.push(c.ms - h.ms)
      }
      rows.push({ name, http: median(http), warm: [median(warm), p90(warm)], cold: [median(cold), p90(cold)] })
      console.log(`${name}: HTTP only ${median(http).toFixed(0)} ms; browser adds warm ${median(warm).toFixed(0)} ms (p90 ${p90(warm).toFixed(0)}), cold ${median(cold).toFixed(0)} ms (p90 ${p90(cold).toFixed(0)})`)
    } finally {
      await (await daytona.getSandbox(r.sandboxId)).delete()
    }
  }
} finally {
  await closePreviewBrowser()
  await git.close()
  for (const dir of [repos, ownHome && process.env.FORGE_HOME].filter(Boolean)) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch (e) {
      console.error(`could not remove ${dir}: ${e.message}`)
    }
  }
}

const ms = (x) => `${Math.round(x)} ms`
const ratio = (a, b) => `${((a + b) / b).toFixed(1)}×`
const worstWarm = Math.max(...rows.map((r) => r.warm[0]))
const lines = [
  `Browser check (\`browser: true\`), measured by \`node bench/browser.mjs ${RUNS}\` on ${new Date().toISOString().slice(0, 10)} (${cpus().length} cores, load average ${loadAtStart} at the start and ${loadavg()[0].toFixed(1)} at the end, embedded backend, Debian's Chromium headless; the same running preview verified over HTTP only, then with the browser warm, then cold):`,
  '',
  '| app | verifyPreview, HTTP only (median) | added, browser warm: median / p90 | added, browser cold: median / p90 | with browser / HTTP only (warm, cold) |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.name} | ${ms(r.http)} | ${ms(r.warm[0])} / ${ms(r.warm[1])} | ${ms(r.cold[0])} / ${ms(r.cold[1])} | ${ratio(r.warm[0], r.http)}, ${ratio(r.cold[0], r.http)} |`),
  '',
  `Goal: ≤ ${GOAL_MS} ms added with the browser warm: ${worstWarm <= GOAL_MS ? 'met' : 'NOT met'} (worst median ${ms(worstWarm)}).`,
]
console.log(`\n${lines.join('\n')}`)
if (!process.argv.includes('--no-readme')) writeSection('browser', lines.join('\n'))
