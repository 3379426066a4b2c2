// The WebAssembly build against the native addon, on the same calls against the same native
// `forge local`: per-call latency (median, p90) and the ratio WASM / native. Each build runs in
// its own child Node (`NAPI_RS_FORCE_WASI=1` for the WebAssembly one), one after the other,
// so they never share the machine's cores. Needs `npm run build:wasm` first.
//
//   node bench/wasm.mjs            BENCH_N=30 calls of each kind per build
//
// Both builds are what is on disk: the native addon of scripts/ensure-built.mjs (the test
// profile unless --release) and the WebAssembly one of `npm run build:wasm` (same).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median, p90 } from './stats.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const N = Number(process.env.BENCH_N || 30)

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
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    if (r.status !== 0) throw new Error(`bench child failed (${r.status})`)
    return JSON.parse(r.stdout.trim().split('\n').pop())
  }
  let native, wasmRun
  try {
    native = run({})
    wasmRun = run({ NAPI_RS_FORCE_WASI: '1' })
  } finally {
    await forge.stop()
  }
  if (native.build !== 'native' || wasmRun.build !== 'wasm') throw new Error(`loaded ${native.build} and ${wasmRun.build}, not native and wasm`)
  const f = (x) => x.toFixed(2).padStart(9)
  console.log(`WebAssembly (wasm32-wasip1-threads) vs native addon, same forge local, ${N} calls each (ms)`)
  console.log(`${'call'.padEnd(26)} ${'native p50'.padStart(10)} ${'p90'.padStart(9)} ${'wasm p50'.padStart(9)} ${'p90'.padStart(9)} ${'ratio p50'.padStart(9)}`)
  console.log(`${'load (require)'.padEnd(26)} ${f(native.loadMs).padStart(10)} ${''.padStart(9)} ${f(wasmRun.loadMs)} ${''.padStart(9)} ${(wasmRun.loadMs / native.loadMs).toFixed(1).padStart(8)}x`)
  for (const name of Object.keys(native.calls)) {
    const a = native.calls[name]
    const b = wasmRun.calls[name]
    console.log(`${name.padEnd(26)} ${f(median(a)).padStart(10)} ${f(p90(a))} ${f(median(b))} ${f(p90(b))} ${(median(b) / median(a)).toFixed(1).padStart(8)}x`)
  }
}
