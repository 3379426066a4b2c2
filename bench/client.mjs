// One benchmark client process: `node bench/client.mjs ours|official`. Talks to the backend in
// DAYTONA_API_URL / DAYTONA_API_KEY, runs each operation (all, or those in BENCH_ONLY) at
// concurrency 1 and 64, and prints one JSON line: per operation and concurrency the sorted
// latencies, the client CPU time (process.cpuUsage: every thread of this process, the
// addon's Rust threads included, measured the same way for both clients) and the peak RSS.
// The backend runs in another process, so none of its work is counted here. bench/run.mjs
// starts one such process per operation and client, so no operation inherits another's heap.
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)

const lib = process.argv[2]
const budgetMs = Number(process.env.BENCH_MS || 2000)
const maxOps = Number(process.env.BENCH_MAX_OPS || 2000)

function adapter() {
  if (lib === 'ours') {
    const { Daytona } = require('../index.js')
    const d = new Daytona({ apiKey: process.env.DAYTONA_API_KEY, apiUrl: process.env.DAYTONA_API_URL })
    return { create: (o) => d.create(o), get: (id) => d.getSandbox(id), preview: (s, p) => s.getPreviewUrl(p) }
  }
  const { Daytona } = require('@daytonaio/sdk')
  const d = new Daytona({ apiKey: process.env.DAYTONA_API_KEY, apiUrl: process.env.DAYTONA_API_URL })
  return { create: (o) => d.create(o), get: (id) => d.get(id), preview: (s, p) => s.getPreviewLink(p) }
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]

async function measure(fn, concurrency) {
  const lat = []
  let done = 0
  let peakRss = process.memoryUsage().rss
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const worker = async () => {
    while (performance.now() - t0 < budgetMs && done < maxOps) {
      done++
      const s = performance.now()
      await fn()
      lat.push(performance.now() - s)
      if ((done & 31) === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
  lat.sort((a, b) => a - b)
  return {
    ops: lat.length,
    p50Ms: pct(lat, 50),
    p99Ms: pct(lat, 99),
    opsPerSec: (lat.length / wall) * 1000,
    cpuUsPerOp: (cpu.user + cpu.system) / lat.length,
    rssMiB: peakRss / 1048576,
    // Raw figures, so that bench/run.mjs can merge several runs of the same operation.
    lat: lat.map((x) => Math.round(x * 1000) / 1000),
    wallMs: wall,
    cpuUs: cpu.user + cpu.system,
  }
}

const a = adapter()

if (process.argv[3] === 'scale') {
  // Embedded backend at scale: N sandboxes created concurrently, each running a command.
  const n = Number(process.env.BENCH_SCALE || 100)
  // Warm-up, as for every operation below: the client's lazy init and a first connection.
  await (await a.create({ labels: { bench: 'scale' } })).delete()
  // n concurrent creates, each followed by `then(sandbox, i)`; all deleted after. Returns the
  // sorted create latencies, the sandboxes made and the burst's wall time.
  const burst = async (then = async () => {}) => {
    const lat = []
    const t0 = performance.now()
    const made = await Promise.all(Array.from({ length: n }, async (_, i) => {
      const s0 = performance.now()
      const s = await a.create({ labels: { bench: 'scale' } })
      lat.push(performance.now() - s0)
      await then(s, i)
      return s
    }))
    const wall = performance.now() - t0
    await Promise.all(made.map((s) => s.delete()))
    lat.sort((x, y) => x - y)
    return { lat, made, wall }
  }
  // The burst from this client with one open connection: each of the other creates also
  // opens its own (what a freshly started app server pays once).
  const { lat: coldStart } = await burst()
  // From here on the client holds n open connections, as a running app server's client does
  // (the operations below run long enough to reach that state; a single burst does not).
  await new Promise((r) => setTimeout(r, 500))
  const { lat: creates, made: sandboxes, wall } = await burst(async (s, i) => {
    const r = await s.process.executeCommand(`echo ok-${i}`)
    if (r.exitCode !== 0 || r.result.trim() !== `ok-${i}`) throw new Error(`sandbox ${i}: ${JSON.stringify(r)}`)
  })
  // The same burst of creates with no command after them: what the backend's create costs
  // when the sandboxes' processes do not share the two cores with it.
  await new Promise((r) => setTimeout(r, 500))
  const { lat: alone } = await burst()
  console.log(JSON.stringify({ lib, scale: { n, ok: sandboxes.length, createP50Ms: pct(creates, 50), createP99Ms: pct(creates, 99), wallMs: wall, creates, alone, coldStart } }))
  process.exit(0)
}
const sandbox = await a.create({ labels: { bench: lib } })
const small = Buffer.alloc(1024, 97)
const mib = Buffer.alloc(1024 * 1024, 98)
const has = (o, m) => o && typeof o[m] === 'function'
let session = null
const ops = {
  'create + delete': async () => { const s = await a.create({ labels: { bench: lib } }); await s.delete() },
  getSandbox: () => a.get(sandbox.id),
  'executeCommand (true)': () => sandbox.process.executeCommand('true'),
  getPreviewUrl: () => a.preview(sandbox, 3000),
}
if (has(sandbox.fs, 'uploadFile')) {
  await sandbox.fs.uploadFile(small, 'bench/small.bin')
  await sandbox.fs.uploadFile(mib, 'bench/mib.bin')
  Object.assign(ops, {
    'uploadFile 1 KiB': () => sandbox.fs.uploadFile(small, 'bench/u-small.bin'),
    'uploadFile 1 MiB': () => sandbox.fs.uploadFile(mib, 'bench/u-mib.bin'),
    'downloadFile 1 KiB': () => sandbox.fs.downloadFile('bench/small.bin'),
    'downloadFile 1 MiB': () => sandbox.fs.downloadFile('bench/mib.bin'),
    listFiles: () => sandbox.fs.listFiles('bench'),
  })
}
if (has(sandbox.process, 'createSession') && has(sandbox.process, 'getSessionCommandLogs')) {
  session = `bench-${process.pid}`
  await sandbox.process.createSession(session)
  ops['session command + logs'] = async () => {
    const c = await sandbox.process.executeSessionCommand(session, { command: 'echo hi', runAsync: false })
    await sandbox.process.getSessionCommandLogs(session, c.cmdId)
  }
}

const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null
const results = {}
for (const [name, fn] of Object.entries(ops)) {
  if (only && !only.has(name)) continue
  await fn() // warm-up: connections, lazy init
  results[name] = { c1: await measure(fn, 1), c64: await measure(fn, 64) }
}
if (session) await sandbox.process.deleteSession(session)
await sandbox.delete()
console.log(JSON.stringify({ lib, results }))
process.exit(0)
