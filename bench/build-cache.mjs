// `node bench/build-cache.mjs [rounds]`: does restoring a Next.js app's own build cache
// (`.next/cache`, webpack's persistent cache) make a second preview's dev server answer
// sooner? The question behind the dependency cache's 5× goal (bench/deps-cache.mjs): with
// `node_modules` restored, a warm Next.js preview is mostly the dev server's start and first
// compile.
//
// The app of bench/deps-cache.mjs (next 15.5.6, app router) is installed once in a temp
// folder; then, alternating, `next dev` starts with no `.next` at all ("cold"), with the
// `.next/cache` of an earlier run restored and the sources touched as a plain clone leaves
// them ("restored, new times"), and restored with the sources at the times the earlier run
// saw ("restored, commit times", what the pipeline's clone step gives two clones of one
// commit). Measured: spawn to the first 200 of `/`, and Next's own "Compiled / in". The cache
// is taken after a run that let webpack store it (its idle store) and stopped with SIGINT.
// Same folder every time (webpack's cache version includes Next's absolute path, as a
// sandbox's fixed path keeps it).
//
// Next's webpack cache version also includes its server actions' encryption key, which it
// keeps in `.next/cache/.rscinfo` unless it thinks it runs in Docker (`/.dockerenv`): then it
// makes a new key every start and no cache is ever valid. This machine has `/.dockerenv`, a
// sandbox of the embedded backend (its own `/`) has not: the key is fixed here
// (NEXT_SERVER_ACTIONS_ENCRYPTION_KEY) to measure what a sandbox gets. An earlier version of
// this benchmark missed that and measured 0.96× (every run a cache miss).
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
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', NEXT_SERVER_ACTIONS_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64') }
const next = join(dir, 'node_modules', 'next', 'dist', 'bin', 'next')
const saved = join(dir, '..', `${dir.split('/').pop()}-cache`)

const freePort = () =>
  new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => ok(port))
    })
  })

/** The sources' times as a clone of the commit gets them from the pipeline. */
const COMMIT_TIME = new Date('2026-01-01T00:00:00Z')

/** One `next dev` until `/` answers 200: { ms, compiled }; `keep` lets webpack store its cache. */
async function run(keep, time) {
  for (const p of Object.keys(files)) utimesSync(join(dir, p), time, time)
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
const KINDS = { cold: [false, () => new Date()], 'restored, new times': [true, () => new Date()], 'restored, commit times': [true, () => COMMIT_TIME] }
try {
  clean(false)
  await run(true, COMMIT_TIME)
  cpSync(join(dir, '.next', 'cache'), saved, { recursive: true })
  const out = Object.fromEntries(Object.keys(KINDS).map((k) => [k, []]))
  for (let i = 0; i < rounds; i++) {
    for (const [kind, [restore, time]] of Object.entries(KINDS)) {
      clean(restore)
      const r = await run(false, time())
      out[kind].push(r)
      console.error(`${kind}: first 200 after ${r.ms} ms (Compiled / in ${r.compiled})`)
    }
  }
  const median = (xs) => xs.map((x) => x.ms).sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const c = median(out.cold)
  const line = Object.keys(KINDS)
    .map((k) => `${k} ${median(out[k])} ms (${(c / median(out[k])).toFixed(2)}×; Compiled / in ${out[k].map((r) => r.compiled).join(', ')})`)
    .join('; ')
  console.log(`next dev, first 200 of / (median of ${rounds}): ${line}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
  rmSync(saved, { recursive: true, force: true })
}
