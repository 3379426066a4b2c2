// `npm run bench`: this package and the official @daytonaio/sdk against the same embedded
// backend (a separate `forge local` process, release build), in one run. Prints a table per
// operation with ratios, cold-load figures, and writes bench/results/latest.json and the
// README's benchmark table.
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const target = process.env.CARGO_TARGET_DIR || join(root, 'target')
console.log('building the forge CLI (release) for the backend process...')
if (!process.env.FORGE_SKIP_BUILD) execFileSync('cargo', ['build', '--release', '-p', 'forge-cli'], { cwd: root, stdio: 'inherit' })

// A private copy of the addon: other builds (a debug `napi build`) may replace the root file
// while the bench runs. It must be a release build (a debug one is ten times larger).
const addonDir = mkdtempSync(join(tmpdir(), 'forge-bench-addon-'))
const addon = join(addonDir, 'daytona.linux-x64-gnu.node')
copyFileSync(join(root, 'daytona.linux-x64-gnu.node'), addon)
if (statSync(addon).size > 100 * 2 ** 20) {
  throw new Error('daytona.linux-x64-gnu.node is a debug build: run `npx napi build --platform --release` first (npm run bench does)')
}
process.env.NAPI_RS_NATIVE_LIBRARY_PATH = addon

async function startBackend() {
  const home = mkdtempSync(join(tmpdir(), 'forge-bench-'))
  const child = spawn(join(target, 'release', 'forge'), ['local', '--json', '--home', home], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.on('data', (d) => { buf += d; const i = buf.indexOf('\n'); if (i >= 0) resolve(buf.slice(0, i)) })
    child.on('exit', (c) => reject(new Error(`forge local exited ${c}`)))
  })
  return { child, ...JSON.parse(line) }
}

function runClient(lib, backend, mode = 'ops', only = null) {
  const env = { ...process.env, DAYTONA_API_URL: backend.apiUrl, DAYTONA_API_KEY: backend.apiKey }
  if (only) env.BENCH_ONLY = only
  const out = execFileSync(process.execPath, [join(root, 'bench', 'client.mjs'), lib, mode], { cwd: root, env, maxBuffer: 1 << 26 })
  return JSON.parse(out.toString().trim().split('\n').pop())
}

// Every operation runs in its own client process (no operation inherits another's heap or
// connections), the two clients alternating, for BENCH_ROUNDS rounds (default 2, the order
// swapped each round) so that both see the same machine load; the rounds' samples are merged.
const OPS = ['create + delete', 'getSandbox', 'executeCommand (true)', 'getPreviewUrl', 'uploadFile 1 KiB', 'uploadFile 1 MiB', 'downloadFile 1 KiB', 'downloadFile 1 MiB', 'listFiles', 'session command + logs']
const rounds = Number(process.env.BENCH_ROUNDS || 2)
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

function merge(runs) {
  if (runs.length === 0) return undefined
  const lat = runs.flatMap((r) => r.lat).sort((a, b) => a - b)
  const ops = runs.reduce((n, r) => n + r.ops, 0)
  return {
    ops,
    p50Ms: pct(lat, 50),
    p99Ms: pct(lat, 99),
    opsPerSec: (ops / runs.reduce((n, r) => n + r.wallMs, 0)) * 1000,
    cpuUsPerOp: runs.reduce((n, r) => n + r.cpuUs, 0) / ops,
    rssMiB: Math.max(...runs.map((r) => r.rssMiB)),
  }
}

function runAll(backend) {
  const raw = { ours: {}, official: {} }
  for (let round = 0; round < rounds; round++) {
    for (const op of OPS) {
      const order = round % 2 === 0 ? ['ours', 'official'] : ['official', 'ours']
      for (const lib of order) {
        const r = runClient(lib, backend, 'ops', op).results[op]
        if (!r) continue
        ;(raw[lib][op] ??= { c1: [], c64: [] }).c1.push(r.c1)
        raw[lib][op].c64.push(r.c64)
      }
    }
  }
  const results = (lib) => Object.fromEntries(Object.entries(raw[lib]).map(([op, r]) => [op, { c1: merge(r.c1), c64: merge(r.c64) }]))
  return { ours: { lib: 'ours', results: results('ours') }, official: { lib: 'official', results: results('official') } }
}

// The embedded backend at scale, BENCH_SCALE_RUNS times (default 3), create latencies merged.
function runScale(backend) {
  const runs = Array.from({ length: Number(process.env.BENCH_SCALE_RUNS || 3) }, () => runClient('ours', backend, 'scale').scale)
  const creates = runs.flatMap((r) => r.creates).sort((a, b) => a - b)
  const alone = runs.flatMap((r) => r.alone).sort((a, b) => a - b)
  const coldStart = runs.flatMap((r) => r.coldStart).sort((a, b) => a - b)
  return {
    aloneP50Ms: pct(alone, 50),
    aloneP99Ms: pct(alone, 99),
    coldP50Ms: pct(coldStart, 50),
    coldP99Ms: pct(coldStart, 99),
    n: runs[0].n,
    ok: Math.min(...runs.map((r) => r.ok)),
    runs: runs.length,
    createP50Ms: pct(creates, 50),
    createP99Ms: pct(creates, 99),
    wallMs: runs.map((r) => r.wallMs).sort((a, b) => a - b)[Math.floor(runs.length / 2)],
  }
}

function coldLoad(spec, runs = 7) {
  const code = `const t=process.hrtime.bigint();require(${JSON.stringify(spec)});const ms=Number(process.hrtime.bigint()-t)/1e6;console.log(JSON.stringify({ms,rss:process.memoryUsage().rss/1048576}))`
  const xs = []
  for (let i = 0; i < runs; i++) xs.push(JSON.parse(execFileSync(process.execPath, ['-e', code], { cwd: root }).toString()))
  xs.sort((a, b) => a.ms - b.ms)
  const mid = xs[Math.floor(runs / 2)]
  return { ms: mid.ms, rssMiB: xs.map((x) => x.rss).sort((a, b) => a - b)[Math.floor(runs / 2)] }
}

const backend = await startBackend()
let ours, official, scale
try {
  ;({ ours, official } = runAll(backend))
  scale = runScale(backend)
} finally {
  backend.child.kill('SIGTERM')
}
const load = { ours: coldLoad(join(root, 'index.js')), official: coldLoad('@daytonaio/sdk') }

const f = (x, d = 1) => (x === undefined ? 'n/a' : x.toFixed(d))
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : 'n/a')
const rows = []
for (const op of Object.keys(official.results)) {
  const o = ours.results[op]
  const s = official.results[op]
  if (!o) { rows.push(`| ${op} | not in this package yet | | | | | |`); continue }
  rows.push(`| ${op} | ${f(o.c1.p50Ms, 2)} / ${f(s.c1.p50Ms, 2)} | ${f(o.c1.p99Ms, 2)} / ${f(s.c1.p99Ms, 2)} | ${f(o.c64.opsPerSec, 0)} / ${f(s.c64.opsPerSec, 0)} (${ratio(o.c64.opsPerSec, s.c64.opsPerSec)}) | ${f(o.c64.p99Ms, 1)} / ${f(s.c64.p99Ms, 1)} | ${f(o.c1.cpuUsPerOp, 0)} / ${f(s.c1.cpuUsPerOp, 0)} (${ratio(o.c1.cpuUsPerOp, s.c1.cpuUsPerOp)}) | ${f(o.c64.rssMiB, 0)} / ${f(s.c64.rssMiB, 0)} |`)
}
const header = [
  `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; both clients against one embedded backend (\`forge local\`, release) in its own process; each operation in a fresh client process per client, ${rounds} rounds alternating the two clients, samples merged. Each cell: **ours / @daytonaio/sdk 0.218.0**.`,
  '',
  '| operation | p50 ms (c=1) | p99 ms (c=1) | ops/s (c=64) | p99 ms (c=64) | client CPU µs/op (c=1) | client RSS MiB |',
  '|---|---|---|---|---|---|---|',
  ...rows,
  '',
  `Embedded backend at scale: ${scale.ok}/${scale.n} sandboxes created concurrently, each running a command, in ${f(scale.wallMs, 0)} ms (median of ${scale.runs} runs); create p50 ${f(scale.createP50Ms)} ms, p99 ${f(scale.createP99Ms)} ms (all runs' creates, from a client whose connection pool already holds ${scale.n} connections, as a running app server's does; each sandbox starts its command as soon as it exists, so the later creates share the two cores with the earlier sandboxes' processes). The same ${scale.n} creates with no command after them: p50 ${f(scale.aloneP50Ms)} ms, p99 ${f(scale.aloneP99Ms)} ms; from a client with one open connection (each create opening its own): p50 ${f(scale.coldP50Ms)} ms, p99 ${f(scale.coldP99Ms)} ms. Goal: create p50 under 10 ms.`,
  '',
  `Cold \`require\`: ours ${f(load.ours.ms)} ms, RSS ${f(load.ours.rssMiB, 0)} MiB; @daytonaio/sdk ${f(load.official.ms)} ms, RSS ${f(load.official.rssMiB, 0)} MiB (${ratio(load.official.ms, load.ours.ms)} faster to load).`,
]
const table = header.join('\n')
console.log(`\n${table}\n`)
mkdirSync(join(root, 'bench', 'results'), { recursive: true })
writeFileSync(join(root, 'bench', 'results', 'latest.json'), JSON.stringify({ date: new Date().toISOString(), ours, official, scale, load }, null, 2))
const readme = join(root, 'README.md')
const text = readFileSync(readme, 'utf8')
const start = '<!-- bench:start -->'
const end = '<!-- bench:end -->'
if (text.includes(start) && text.includes(end)) {
  writeFileSync(readme, text.slice(0, text.indexOf(start) + start.length) + '\n' + table + '\n' + text.slice(text.indexOf(end)))
  console.log('README benchmark table updated')
}
