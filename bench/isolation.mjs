// `npm run bench` (part): what containers cost. Two `forge local` processes (release build) in
// one run, one whose sandboxes are containers (the default) and one with FORGE_ISOLATION=off
// (sandboxes are folders and processes of this machine, as before containers), the same
// requests sent to both, alternating rounds so both see the same machine load:
//   - create: POST /api/sandbox (the container is started in the background);
//   - first command: create, then `true` through process/execute (the first command waits for
//     the container if it is not up yet), the time of both;
//   - executeCommand('true') on a warm sandbox.
// Goals (issue "Sandboxes that are sandboxes"): create p50 <= 10 ms; executeCommand p50 with
// containers <= 1.5x the unconfined figure. Prints a table with ratios and writes the README's
// section.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeSection } from './readme.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const target = process.env.CARGO_TARGET_DIR || join(root, 'target')
if (!process.env.FORGE_SKIP_BUILD) execFileSync('cargo', ['build', '--release', '-p', 'forge-cli'], { cwd: root, stdio: 'inherit' })

async function startBackend(isolation) {
  const home = mkdtempSync(join(tmpdir(), `forge-bench-iso-${isolation}-`))
  const env = { ...process.env, FORGE_ISOLATION: isolation, FORGE_STOP_SANDBOXES_ON_EXIT: '1' }
  const child = spawn(join(target, 'release', 'forge'), ['local', '--json', '--home', home], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.on('data', (d) => {
      buf += d
      const i = buf.indexOf('\n')
      if (i >= 0) resolve(buf.slice(0, i))
    })
    child.on('exit', (c) => reject(new Error(`forge local exited ${c}`)))
  })
  const info = JSON.parse(line)
  const call = async (method, path, body) => {
    const res = await fetch(`${info.apiUrl.replace(/\/api$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${info.apiKey}`, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    })
    const text = await res.text()
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`)
    return text ? JSON.parse(text) : null
  }
  return {
    isolation,
    call,
    async stop() {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
      rmSync(home, { recursive: true, force: true })
    },
  }
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

async function round(b, creates, execs) {
  const out = { create: [], first: [], exec: [] }
  const made = []
  for (let i = 0; i < creates; i++) {
    let t0 = process.hrtime.bigint()
    const s = await b.call('POST', '/api/sandbox', {})
    out.create.push(ms(t0))
    await b.call('POST', `/toolbox/${s.id}/process/execute`, { command: 'true' })
    out.first.push(ms(t0))
    made.push(s.id)
  }
  const warm = made[0]
  for (let i = 0; i < 10; i++) await b.call('POST', `/toolbox/${warm}/process/execute`, { command: 'true' })
  for (let i = 0; i < execs; i++) {
    const t0 = process.hrtime.bigint()
    const r = await b.call('POST', `/toolbox/${warm}/process/execute`, { command: 'true' })
    out.exec.push(ms(t0))
    if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`)
  }
  for (const id of made) await b.call('DELETE', `/api/sandbox/${id}`)
  return out
}

const rounds = Number(process.env.BENCH_ROUNDS || 3)
const creates = Number(process.env.BENCH_CREATES || 20)
const execs = Number(process.env.BENCH_EXECS || 150)
const on = await startBackend('auto')
const off = await startBackend('off')
const check = await on.call('POST', '/api/sandbox', {})
if (check.isolation?.level !== 'container') throw new Error(`sandboxes are not containers here: ${JSON.stringify(check.isolation)}`)
await on.call('DELETE', `/api/sandbox/${check.id}`)
const all = { auto: { create: [], first: [], exec: [] }, off: { create: [], first: [], exec: [] } }
for (let r = 0; r < rounds; r++) {
  for (const b of r % 2 ? [off, on] : [on, off]) {
    const got = await round(b, creates, execs)
    for (const k of Object.keys(got)) all[b.isolation][k].push(...got[k])
  }
}
await on.stop()
await off.stop()

const rows = [
  ['create', 'create'],
  ['create + first command', 'first'],
  ["executeCommand('true'), warm", 'exec'],
]
const fmt = (x) => x.toFixed(2)
const lines = [
  `| operation | containers p50 / p99 (ms) | unconfined p50 / p99 (ms) | p50 ratio |`,
  `|---|---|---|---|`,
]
for (const [name, key] of rows) {
  const a = all.auto[key]
  const b = all.off[key]
  lines.push(`| ${name} | ${fmt(pct(a, 50))} / ${fmt(pct(a, 99))} | ${fmt(pct(b, 50))} / ${fmt(pct(b, 99))} | ${(pct(a, 50) / pct(b, 50)).toFixed(2)}x |`)
}
const createP50 = pct(all.auto.create, 50)
const execRatio = pct(all.auto.exec, 50) / pct(all.off.exec, 50)
const verdict = [
  `create p50 ${fmt(createP50)} ms (goal <= 10 ms: ${createP50 <= 10 ? 'met' : 'missed'});`,
  `executeCommand p50 ${execRatio.toFixed(2)}x the unconfined figure (goal <= 1.5x: ${execRatio <= 1.5 ? 'met' : 'missed'}).`,
].join(' ')
const table = lines.join('\n')
console.log(table)
console.log(verdict)
writeSection(
  'isolation',
  `What containers cost (\`node bench/isolation.mjs\`, ${rounds} alternating rounds of ${creates} creates and ${execs} warm commands per backend, ${cpus().length} cores, ${new Date().toISOString().slice(0, 10)}): every request over HTTP to a \`forge local\` whose sandboxes are containers and to one with \`FORGE_ISOLATION=off\`.\n\n${table}\n\n${verdict}`,
)
