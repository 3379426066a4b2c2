// forge-detect against @vercel/fs-detectors and @netlify/build-info, on the same projects, in
// one run: projects made by real generators from npm (bench/detect/generators.mjs) plus the
// tricky fixtures (crates/detect/tests/fixtures), written to one folder.
//
//   cd bench/detect && npm install && node run.mjs
//
// Prints per project: the truth, each tool's answer (framework, port where the tool gives one)
// and whether it is right; the median in-process time of one detection (ours through the
// addon's detectFramework(folder), Vercel's detectFrameworkRecord, Netlify's
// Project.detectFrameworks in a Node 22 child) and the median whole-process time (our
// `forge detect DIR --json` binary against `node one-vercel.mjs DIR` / `node22 one-netlify.mjs DIR`).
// Env: FORGE_BENCH_DIR (projects folder, kept between runs), FORGE_BIN (the forge binary),
// BENCH_RUNS (in-process runs per project, default 30), BENCH_PROC_RUNS (default 5).
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GENERATORS, generate } from './generators.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = join(here, '..', '..')
const require = createRequire(import.meta.url)
const RUNS = Number(process.env.BENCH_RUNS ?? 30)
const PROC_RUNS = Number(process.env.BENCH_PROC_RUNS ?? 5)
const base = process.env.FORGE_BENCH_DIR ?? join(tmpdir(), 'forge-detect-bench')
const node22 = join(here, 'node_modules', 'node', 'bin', 'node')

const { detectFramework } = require(join(repo, 'index.js'))
const { detectFrameworkRecord, LocalFileSystemDetector } = require('@vercel/fs-detectors')
const { frameworkList } = require('@vercel/frameworks')

/** Which peer answers count as right for each of our framework ids (generous to peers). */
const V = { vercel: ['vite'], netlify: ['vite'] }
const ACCEPT = {
  nextjs: { vercel: ['nextjs'], netlify: ['next'] },
  'vite-react': V, 'vite-vue': V, 'vite-preact': V, 'vite-lit': V, vite: V,
  'vite-svelte': { vercel: ['vite'], netlify: ['vite', 'svelte'] },
  'vite-solid': { vercel: ['vite'], netlify: ['vite', 'solid-js'] },
  qwik: { vercel: ['vite'], netlify: ['qwik', 'vite'] },
  // Vercel's `vite --port $PORT` drops the `--mode ssr` a Qwik City app needs.
  'qwik-city': { vercel: [], netlify: ['qwik'] },
  sveltekit: { vercel: ['sveltekit', 'sveltekit-1'], netlify: ['svelte-kit'] },
  angular: { vercel: ['angular'], netlify: ['angular'] },
  docusaurus: { vercel: ['docusaurus-2'], netlify: ['docusaurus'] },
  nestjs: { vercel: ['nestjs'], netlify: [] },
  express: { vercel: ['express'], netlify: [] },
  hono: { vercel: ['hono'], netlify: ['hono'] },
  waku: { vercel: ['waku'], netlify: ['waku'] },
  'ember-vite': { vercel: ['ember'], netlify: ['ember', 'vite'] },
  'react-router': { vercel: ['react-router'], netlify: ['react-router'] },
  remix: { vercel: ['remix'], netlify: ['remix'] },
  astro: { vercel: ['astro'], netlify: ['astro'] },
  nuxt: { vercel: ['nuxtjs'], netlify: ['nuxt'] },
  'tanstack-start': { vercel: ['tanstack-start'], netlify: ['tanstack-start'] },
  gatsby: { vercel: ['gatsby'], netlify: ['gatsby'] },
  'create-react-app': { vercel: ['create-react-app'], netlify: ['create-react-app'] },
  expo: { vercel: [], netlify: ['expo'] },
  'tanstack-router': { vercel: ['vite'], netlify: ['tanstack-router'] },
  'vite-solid-pinned': { vercel: ['vite'], netlify: ['solid-js'] },
}
/** Fixtures added to the generated projects: the pairs where detectors disagree. */
const FIXTURES = ['waku', 'hono', 'ember-vite', 'storybook-in-vite', 'solid-template-port', 'remix-vite', 'react-router', 'tanstack-start', 'astro', 'nuxt', 'mono-pnpm-turbo', 'gatsby', 'create-react-app', 'express']

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const slug = (s) => s.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase()

function projects() {
  mkdirSync(base, { recursive: true })
  const out = []
  for (const g of GENERATORS) {
    const dir = join(base, slug(g.name))
    if (!existsSync(join(dir, 'package.json'))) {
      process.stderr.write(`generating ${g.name} ...\n`)
      const r = generate(g, base)
      if (r.skip) {
        process.stderr.write(`  skipped: ${r.skip}\n`)
        continue
      }
      rmSync(dir, { recursive: true, force: true })
      renameSync(r.dir, dir)
    }
    out.push({ name: g.name, dir, truth: g.expect })
  }
  for (const f of FIXTURES) {
    const fx = JSON.parse(readFileSync(join(repo, 'crates', 'detect', 'tests', 'fixtures', `${f}.json`), 'utf8'))
    const dir = join(base, `fixture-${f}`)
    rmSync(dir, { recursive: true, force: true })
    for (const [p, c] of Object.entries(fx.files)) {
      mkdirSync(dirname(join(dir, p)), { recursive: true })
      writeFileSync(join(dir, p), c)
    }
    out.push({ name: `fixture ${f}`, dir, truth: { framework: fx.expect.framework, port: fx.expect.port ?? null } })
  }
  for (const d of readdirSync(base)) if (d.startsWith('gen-')) rmSync(join(base, d), { recursive: true, force: true })
  return out
}

function forgeBin() {
  if (process.env.FORGE_BIN) return process.env.FORGE_BIN
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, 'target')
  const bin = join(target, 'release', 'forge')
  if (!existsSync(bin)) {
    process.stderr.write('building the forge binary: cargo build --release -p forge-cli\n')
    spawnSync('cargo', ['build', '--release', '-p', 'forge-cli'], { cwd: repo, stdio: 'inherit' })
  }
  return bin
}

function wallMs(cmd, args, runs) {
  const times = []
  let out = ''
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: here })
    times.push(performance.now() - t)
    out = r.stdout
  }
  return { ms: median(times), out }
}

const list = projects()
const bin = forgeBin()
process.stderr.write(`${list.length} projects; Netlify runs under ${node22}\n`)
const netlify = JSON.parse(spawnSync(node22, [join(here, 'peers-netlify.mjs'), String(RUNS), ...list.map((p) => p.dir)], { encoding: 'utf8', cwd: here, maxBuffer: 1 << 26 }).stdout)

// In-process first, before any process is spawned, and interleaved (ours, Vercel, ours, ...)
// so both see the same machine noise.
const first = new Map()
const times = new Map(list.map((p) => [p.dir, { ours: [], vercel: [] }]))
for (const p of list) {
  first.set(p.dir, {
    ours: await detectFramework(p.dir),
    vercel: await detectFrameworkRecord({ fs: new LocalFileSystemDetector(p.dir), frameworkList }),
  })
}
for (let i = 0; i < RUNS; i++) {
  for (const p of list) {
    const t = times.get(p.dir)
    for (let k = 0; k < 3; k++) {
      const a = performance.now()
      await detectFramework(p.dir)
      t.ours.push(performance.now() - a)
    }
    const b = performance.now()
    await detectFrameworkRecord({ fs: new LocalFileSystemDetector(p.dir), frameworkList })
    t.vercel.push(performance.now() - b)
  }
}

const rows = []
for (const p of list) {
  const ours = { answer: first.get(p.dir).ours, ms: median(times.get(p.dir).ours) }
  const vercel = { answer: first.get(p.dir).vercel, ms: median(times.get(p.dir).vercel) }
  const nl = netlify[p.dir]
  const accept = ACCEPT[p.truth.framework] ?? { vercel: [], netlify: [] }
  const ourId = ours.answer.framework?.id ?? null
  const vSlug = vercel.answer?.slug ?? null
  const nFirst = nl.answer[0] ?? null
  const right = {
    ours: ourId === p.truth.framework && (p.truth.port == null || ours.answer.port === p.truth.port),
    vercel: accept.vercel.includes(vSlug),
    netlify: nFirst != null && accept.netlify.includes(nFirst.id) && (p.truth.port == null || nFirst.port === p.truth.port),
  }
  rows.push({
    name: p.name,
    truth: `${p.truth.framework}:${p.truth.port ?? '-'}`,
    ours: `${ourId}:${ours.answer.port}`,
    vercel: `${vSlug}`,
    netlify: nl.answer.map((f) => `${f.id}:${f.port ?? '-'}`).join('+') || 'null',
    right,
    inproc: { ours: ours.ms, vercel: vercel.ms, netlify: nl.medianMs },
    proc: {
      ours: wallMs(bin, ['detect', p.dir, '--json'], PROC_RUNS * 4).ms,
      vercel: wallMs(process.execPath, [join(here, 'one-vercel.mjs'), p.dir], PROC_RUNS).ms,
      netlify: wallMs(node22, [join(here, 'one-netlify.mjs'), p.dir], PROC_RUNS).ms,
    },
  })
  process.stderr.write('.')
}
process.stderr.write('\n')

const mark = (b) => (b ? 'ok ' : 'NO ')
const pad = (s, n) => String(s).padEnd(n)
const f2 = (x) => x.toFixed(x < 1 ? 3 : 1)
console.log(`\nAgreement (right = framework matches the truth and, where the tool states a port, the port too)\n`)
console.log(`${pad('project', 34)} ${pad('truth', 22)} ${pad('forge-detect', 24)} ${pad('vercel', 18)} netlify`)
for (const r of rows) {
  console.log(`${pad(r.name, 34)} ${pad(r.truth, 22)} ${mark(r.right.ours)}${pad(r.ours, 21)} ${mark(r.right.vercel)}${pad(r.vercel, 15)} ${mark(r.right.netlify)}${r.netlify}`)
}
const count = (k) => rows.filter((r) => r.right[k]).length
const peerRightOursWrong = rows.filter((r) => !r.right.ours && (r.right.vercel || r.right.netlify))
console.log(`\nright: forge-detect ${count('ours')}/${rows.length}, vercel ${count('vercel')}/${rows.length}, netlify ${count('netlify')}/${rows.length}`)
console.log(`projects where a peer is right and forge-detect is wrong: ${peerRightOursWrong.length}${peerRightOursWrong.map((r) => ` ${r.name}`).join(',')}`)

console.log(`\nTime per project (median; in-process ms for one detection, whole-process ms)\n`)
console.log(`${pad('project', 34)} ${pad('ours in', 9)} ${pad('vercel in', 10)} ${pad('netlify in', 11)} ${pad('ours proc', 10)} ${pad('vercel proc', 12)} netlify proc`)
for (const r of rows) {
  console.log(`${pad(r.name, 34)} ${pad(f2(r.inproc.ours), 9)} ${pad(f2(r.inproc.vercel), 10)} ${pad(f2(r.inproc.netlify), 11)} ${pad(f2(r.proc.ours), 10)} ${pad(f2(r.proc.vercel), 12)} ${f2(r.proc.netlify)}`)
}
const med = (k, g) => median(rows.map((r) => r[g][k]))
const ratios = rows.map((r) => Math.min(r.inproc.vercel, r.inproc.netlify) / r.inproc.ours)
console.log(`\nmedian over projects: in-process ours ${f2(med('ours', 'inproc'))} ms, vercel ${f2(med('vercel', 'inproc'))} ms, netlify ${f2(med('netlify', 'inproc'))} ms`)
console.log(`in-process speed-up over the faster peer: median ${median(ratios).toFixed(0)}x, worst ${Math.min(...ratios).toFixed(0)}x (goal >= 20x)`)
console.log(`whole process: forge detect ${f2(med('ours', 'proc'))} ms (max ${f2(Math.max(...rows.map((r) => r.proc.ours)))} ms; goal < 20 ms), node+vercel ${f2(med('vercel', 'proc'))} ms, node22+netlify ${f2(med('netlify', 'proc'))} ms`)
