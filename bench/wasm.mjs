// The WebAssembly build against the native addon, on the same calls against the same native
// `forge local`: cold load (the package entry's `require`), per-call latency (median, p90) and
// the ratio WASM / native. Each build runs in its own child Node (`NAPI_RS_FORCE_WASI=1` for
// the WebAssembly one), one after the other, so they never share the machine's cores; the
// rounds alternate native and WebAssembly children, so a change in the machine's load lands on
// both. Prints the table and writes it into the README (<!-- bench-wasm:start/end -->).
//
//   node bench/wasm.mjs [--no-readme]   BENCH_N=30 calls of each kind per child,
//                                       BENCH_ROUNDS=3 children per build
//
// Both builds are what is on disk: the native addon of scripts/ensure-built.mjs and the
// WebAssembly one of `npm run build:wasm` (each with --release for the README's figures); the
// heading names the cargo profile each came from (the newer of release and test-addon).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median, p90 } from './stats.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const N = Number(process.env.BENCH_N || 30)
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3)

if (process.argv[2] === 'child') {
  await child()
} else {
  await parent()
}

/** One build: loads the package entry, then times each call N times; prints one JSON line. */
async function child() {
  const t0 = performance.now()
  const addon = createRequire(import.meta.url)('../index.js')
  const load = performance.now() - t0
  const daytona = new addon.Daytona({ apiUrl: process.env.DAYTONA_API_URL, apiKey: process.env.DAYTONA_API_KEY })
  const sandbox = await daytona.create()
  const dir = mkdtempSync(join(tmpdir(), 'forge-bench-wasm-'))
  const files = {
    'package.json': JSON.stringify({ scripts: { dev: 'next dev' }, dependencies: { next: '15.0.0', react: '19.0.0' } }),
    'next.config.js': 'module.exports = {}',
  }
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  const calls = {
    getSandbox: () => daytona.getSandbox(sandbox.id),
    listSandboxes: () => daytona.listSandboxes(),
    'executeCommand(true)': () => sandbox.process.executeCommand('true'),
    'fs.uploadFile(1 KiB)': () => sandbox.fs.uploadFile(Buffer.alloc(1024, 1), 'workspace/b.bin'),
    'fs.downloadFile(1 KiB)': () => sandbox.fs.downloadFile('workspace/b.bin'),
    'detectFramework(folder)': () => addon.detectFramework(dir),
    'detectFrameworkSync(map)': async () => addon.detectFrameworkSync(files),
  }
  const out = { build: typeof addon.__installFetch === 'function' ? 'wasm' : 'native', loadMs: load, calls: {} }
  try {
    for (const [name, call] of Object.entries(calls)) {
      await call() // warm-up, not counted
      const ms = []
      for (let i = 0; i < N; i++) {
        const s = performance.now()
        await call()
        ms.push(performance.now() - s)
      }
      out.calls[name] = ms
    }
  } finally {
    await sandbox.delete()
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(JSON.stringify(out))
}

async function parent() {
  const wasm = join(root, 'node_modules', '@smartapi-forge', 'daytona-wasm32-wasi', 'daytona.wasm32-wasi.wasm')
  if (!existsSync(wasm)) {
    console.error(`bench/wasm.mjs: the WebAssembly build is absent (${wasm}): run \`npm run build:wasm\` first`)
    process.exit(1)
  }
  const { startForgeLocal } = await import('../crates/testkit/js/forge-local.mjs')
  process.env.FORGE_STOP_SANDBOXES_ON_EXIT = '1'
  const forge = await startForgeLocal()
  const run = (extra) => {
    const env = { ...process.env, DAYTONA_API_URL: forge.apiUrl, DAYTONA_API_KEY: forge.apiKey, ...extra }
    if (!extra.NAPI_RS_FORCE_WASI) delete env.NAPI_RS_FORCE_WASI
    // Bounded: a child that hangs fails the bench instead of holding it.
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 10 * 60_000 })
    if (r.status !== 0) throw new Error(`bench child failed (status ${r.status}, signal ${r.signal})`)
    return JSON.parse(r.stdout.trim().split('\n').pop())
  }
  const runs = { native: [], wasm: [] }
  try {
    for (let round = 0; round < ROUNDS; round++) {
      runs.native.push(run({}))
      runs.wasm.push(run({ NAPI_RS_FORCE_WASI: '1' }))
    }
  } finally {
    await forge.stop()
  }
  for (const [build, list] of Object.entries(runs)) {
    const wrong = list.find((r) => r.build !== build)
    if (wrong) throw new Error(`a ${build} child loaded the ${wrong.build} build`)
  }
  /** One build's samples: load times per child, each call's times of every child merged. */
  const merged = (list) => ({
    load: list.map((r) => r.loadMs),
    calls: Object.fromEntries(Object.keys(list[0].calls).map((name) => [name, list.flatMap((r) => r.calls[name])])),
  })
  const native = merged(runs.native)
  const wasmRun = merged(runs.wasm)
  const ms = (x) => (x < 10 ? x.toFixed(2) : x.toFixed(1))
  const ratio = (a, b) => `${(b / a).toFixed(1)}×`
  const rows = [
    ['cold load (`require` of the entry)', native.load, wasmRun.load],
    ...Object.keys(native.calls).map((name) => [`\`${name}\``, native.calls[name], wasmRun.calls[name]]),
  ]
  const table = [
    '| call | native p50 / p90 (ms) | WebAssembly p50 / p90 (ms) | WebAssembly / native (p50) |',
    '|---|---|---|---|',
    ...rows.map(([name, a, b]) => `| ${name} | ${ms(median(a))} / ${ms(p90(a))} | ${ms(median(b))} / ${ms(p90(b))} | ${ratio(median(a), median(b))} |`),
  ]
  const r = (name) => median(wasmRun.calls[name]) / median(native.calls[name])
  const network = ['getSandbox', 'listSandboxes', 'executeCommand(true)', 'fs.uploadFile(1 KiB)', 'fs.downloadFile(1 KiB)'].map(r)
  const detection = ['detectFramework(folder)', 'detectFrameworkSync(map)'].map(r)
  const span = (xs) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}×`
  const added = median(wasmRun.calls.getSandbox) - median(native.calls.getSandbox)
  const summary =
    `What the fallback costs: loading it takes ${ms(median(wasmRun.load))} ms instead of ${ms(median(native.load))} ms (once per process); ` +
    `each client call ${span(network)} the native time against this local backend (\`getSandbox\` ${ms(median(wasmRun.calls.getSandbox))} vs ${ms(median(native.calls.getSandbox))} ms, ` +
    `${ms(added)} ms more: every request goes from WebAssembly through JavaScript \`fetch\` and back); ` +
    "that cost is added to the backend's time rather than multiplying it, so against a remote Daytona, whose calls take longer, the ratios are smaller; " +
    `detection ${span(detection)}. The sandbox's own work (install, dev server start) is the same for both.`
  const heading =
    `WebAssembly fallback vs native addon, measured by \`node bench/wasm.mjs\` on ${new Date().toISOString().slice(0, 10)} ` +
    `(Node ${process.version}, ${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at the end; native: ${profileOf('x86_64-unknown-linux-gnu', 'libsmartapi_forge_daytona.so')}; ` +
    `WebAssembly: ${profileOf('wasm32-wasip1-threads', 'smartapi_forge_daytona.wasm')}, ${(statSync(wasm).size / 1e6).toFixed(1)} MB; one native \`forge local\` (${process.env.FORGE_BIN ? relative(root, process.env.FORGE_BIN) : 'target/debug/forge, a debug build'}); ` +
    `${ROUNDS} child processes per build, alternating, each loading the package entry once and making each call ${N} times after one warm-up):`
  console.log(`\n${heading}\n\n${table.join('\n')}\n\n${summary}`)
  if (!process.argv.includes('--no-readme')) {
    const { writeSection } = await import('./readme.mjs')
    writeSection('wasm', [heading, '', ...table, '', summary].join('\n'))
  }
}

/** Which cargo profile built `file` for `triple` last: the newer of the two outputs. */
function profileOf(triple, file) {
  const built = ['release', 'test-addon']
    .map((p) => ({ p, f: join(root, 'target', triple, p, file) }))
    .filter(({ f }) => existsSync(f))
    .sort((a, b) => statSync(b.f).mtimeMs - statSync(a.f).mtimeMs)
  return built.length ? `the ${built[0].p} build` : 'build profile unknown'
}
