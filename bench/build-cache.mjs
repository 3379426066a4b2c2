// `node bench/build-cache.mjs [rounds]`: would restoring a Next.js app's own build cache
// (`.next/cache`, webpack's persistent cache) make a second preview's dev server answer
// sooner? The question behind the dependency cache's 5× goal (bench/deps-cache.mjs): with
// `node_modules` restored, a warm Next.js preview is ~95% the dev server's start and first
// compile.
//
// The app of bench/deps-cache.mjs (next 15.5.6, app router) is installed once in a temp
// folder; then, alternating, `next dev` starts with no `.next` at all ("cold") and with the
// `.next/cache` a previous run wrote restored ("restored"), the sources touched first as a
// fresh clone leaves them (new mtimes), and the time from spawn to the first 200 of `/` is
// measured with Next's own "Compiled / in". The cache is taken after a run that let webpack
// store it (its idle store) and stopped with SIGINT. Same folder every time (webpack's cache
// version includes Next's absolute path, as a sandbox's fixed path would keep it).
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const rounds = Number(process.argv[2] ?? 3)
const dir = mkdtempSync(join(tmpdir(), 'forge-bench-build-cache-'))
const files = {
  'package.json': JSON.stringify({ name: 'bench-next', private: true, scripts: { dev: 'next dev' }, dependencies: { next: '15.5.6', react: '19.2.0', 'react-dom': '19.2.0' } }),
  'next.config.mjs': 'export default { eslint: { ignoreDuringBuilds: true } }\n',
  'app/layout.js': 'export default function RootLayout({ children }) { return <html><body>{children}</body></html> }\n',
  'app/page.js': 'export default function Page() { return <h1>hello from next</h1> }\n',
}
for (const [p, text] of Object.entries(files)) {
  mkdirSync(join(dir, p, '..'), { recursive: true })
  writeFileSync(join(dir, p), text)
}
execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' }
const next = join(dir, 'node_modules', 'next', 'dist', 'bin', 'next')
const saved = join(dir, '..', `${dir.split('/').pop()}-cache`)

const freePort = () =>
  new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => ok(port))
    })
  })

/** One `next dev` until `/` answers 200: { ms, compiled }; `keep` lets webpack store its cache. */
async function run(keep) {
  const now = new Date()
  for (const p of Object.keys(files)) utimesSync(join(dir, p), now, now)
  const port = await freePort()
  const t0 = performance.now()
  const child = spawn(process.execPath, [next, 'dev', '-H', '127.0.0.1', '-p', String(port)], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout.on('data', (d) => (log += d))
  child.stderr.on('data', (d) => (log += d))
  let ms = null
  for (let i = 0; i < 1200 && ms === null; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(120_000) })
      if (res.status === 200) ms = Math.round(performance.now() - t0)
    } catch {}
    if (ms === null) await new Promise((r) => setTimeout(r, 100))
  }
  if (keep) await new Promise((r) => setTimeout(r, 10_000))
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGINT')
  await exited
  return { ms, compiled: /Compiled \/ in ([\d.]+m?s)/.exec(log)?.[1] ?? '?' }
}

const clean = (restore) => {
  rmSync(join(dir, '.next'), { recursive: true, force: true })
  if (restore) cpSync(saved, join(dir, '.next', 'cache'), { recursive: true })
}
try {
  clean(false)
  await run(true)
  cpSync(join(dir, '.next', 'cache'), saved, { recursive: true })
  const out = { cold: [], restored: [] }
  for (let i = 0; i < rounds; i++) {
    for (const kind of ['restored', 'cold']) {
      clean(kind === 'restored')
      const r = await run(false)
      out[kind].push(r)
      console.error(`${kind}: first 200 after ${r.ms} ms (Compiled / in ${r.compiled})`)
    }
  }
  const median = (xs) => xs.map((x) => x.ms).sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const c = median(out.cold)
  const r = median(out.restored)
  console.log(`next dev, first 200 of / (median of ${rounds}): cold ${c} ms, with .next/cache restored ${r} ms: ratio ${(c / r).toFixed(2)}×`)
} finally {
  rmSync(dir, { recursive: true, force: true })
  rmSync(saved, { recursive: true, force: true })
}
