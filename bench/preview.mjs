// `node bench/preview.mjs [runs]`: how fast the pipeline knows a preview works, against the
// integration guide's flow written with the official SDK (@daytonaio/sdk, pinned) whose fixed
// 15 s sleep is replaced by wait-on's default: poll the preview URL every 250 ms until a 200.
// Both talk to the same `forge local` backend (FORGE_BIN selects the binary, e.g. a release
// build), clone the same repository from a git smart-HTTP server on 127.0.0.1 and start the
// same dev server, which prints the wall-clock time it started listening and answered its
// first request. Figures per run:
//   settle   = client saw "ready" − the dev server's first good answer   (goal: median < 150 ms)
//   overhead = total − install − server start-up                          (goal: < 300 ms)
// where start-up = the server's "listening" time − the moment the client started it.
import { createRequire } from 'node:module'
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRepo, startForgeLocal, startGitHttp } from '../crates/testkit/js/forge-local.mjs'
import { writeSection } from './readme.mjs'
import { median, p90 } from './stats.mjs'

const require = createRequire(import.meta.url)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const { Daytona } = require(join(root, 'index.js'))
const { Daytona: OfficialDaytona } = require('@daytonaio/sdk')

const RUNS = Number(process.argv[2] ?? process.env.PREVIEW_RUNS ?? 8)
const BOOT_MS = 400 // the dev server "boots" for this long before it listens
const TOKEN = 'bench_token_0123456789'
const PATH = 'workspace/project'

const SERVER = `const http = require('http')
let first = 0
setTimeout(() => {
  http.createServer((q, s) => {
    if (!first) { first = Date.now(); console.log('FIRST_OK ' + first) }
    s.end('<!doctype html><title>bench</title><h1>ok</h1>')
  }).listen(Number(process.env.PORT || 3000), () => {
    console.log('LISTENING ' + Date.now())
    console.log('  Local:   http://localhost:' + (process.env.PORT || 3000) + '/') // as dev servers announce
  })
}, ${BOOT_MS})
`

const stamp = (logs, tag) => Number((logs.match(new RegExp(`${tag} (\\d+)`)) ?? [])[1])

async function ours(daytona, repoUrl) {
  let startAt = 0
  const t0 = Date.now()
  const r = await daytona.cloneAndPreview({
    repoUrl,
    token: TOKEN,
    public: true,
    installCommand: 'true',
    devCommand: 'node server.js',
    onProgress: (e) => {
      if (e.step === 'start' && e.status === 'started') startAt = Date.now()
    },
  })
  const done = Date.now()
  const sandbox = await daytona.getSandbox(r.sandboxId)
  const logs = (await sandbox.process.getSessionCommandLogs(r.sessionId, r.commandId)).stdout
  await sandbox.delete()
  const startup = stamp(logs, 'LISTENING') - startAt
  const listening = stamp(logs, 'LISTENING')
  return { settle: done - stamp(logs, 'FIRST_OK'), listenToReady: done - listening, overhead: done - t0 - r.timings.install - startup, total: done - t0, timings: r.timings, startup }
}

async function official(sdk, repoUrl) {
  const t0 = Date.now()
  const sandbox = await sdk.create({ public: true })
  await sandbox.git.clone(repoUrl, PATH, undefined, undefined, 'x-access-token', TOKEN)
  const ti = Date.now()
  const install = await sandbox.process.executeCommand('true', PATH)
  if (install.exitCode !== 0) throw new Error('install failed')
  const installMs = Date.now() - ti
  const sessionId = `dev-${Date.now()}`
  await sandbox.process.createSession(sessionId)
  const startAt = Date.now()
  const { cmdId } = await sandbox.process.executeSessionCommand(sessionId, { command: `cd ${PATH} && PORT=3000 node server.js`, runAsync: true })
  const preview = await sandbox.getPreviewLink(3000)
  for (;;) {
    const ok = await fetch(preview.url, { headers: { 'x-daytona-preview-token': preview.token } }).then((r) => r.status === 200, () => false)
    if (ok) break
    await new Promise((r) => setTimeout(r, 250))
  }
  const done = Date.now()
  const l = await sandbox.process.getSessionCommandLogs(sessionId, cmdId)
  const logs = l.stdout ?? l.output
  await sandbox.delete()
  const startup = stamp(logs, 'LISTENING') - startAt
  return { settle: done - stamp(logs, 'FIRST_OK'), listenToReady: done - stamp(logs, 'LISTENING'), overhead: done - t0 - installMs - startup, total: done - t0 }
}

const backend = await startForgeLocal()
const repos = mkdtempSync(join(tmpdir(), 'forge-bench-preview-'))
createRepo(repos, 'app.git', 'main', {
  'package.json': JSON.stringify({ name: 'bench-app', private: true, scripts: { dev: 'node server.js' } }),
  'server.js': SERVER,
})
const git = await startGitHttp(repos, null, TOKEN)
const repoUrl = git.url('app.git')
const daytona = new Daytona({ apiUrl: backend.apiUrl, apiKey: backend.apiKey })
const sdk = new OfficialDaytona({ apiUrl: backend.apiUrl, apiKey: backend.apiKey })

const results = { ours: [], official: [] }
try {
  // One warm-up each (connection pools, page cache), then interleaved runs.
  await ours(daytona, repoUrl)
  await official(sdk, repoUrl)
  for (let i = 0; i < RUNS; i++) {
    results.ours.push(await ours(daytona, repoUrl))
    results.official.push(await official(sdk, repoUrl))
  }
} finally {
  await git.close()
  await backend.stop()
}

const row = (name, key) => {
  const a = results.ours.map((r) => r[key])
  const b = results.official.map((r) => r[key])
  return { name, ours: median(a), oursP90: p90(a), official: median(b), officialP90: p90(b), ratio: median(b) / median(a) }
}
const rows = [row('first good answer → ready (settle)', 'settle'), row('server listening → ready', 'listenToReady'), row('pipeline overhead (total − install − start-up)', 'overhead'), row('total', 'total')]
const steps = ['create', 'clone', 'detect', 'install', 'start', 'verify']
const lines = [
  `Preview readiness, measured by \`node bench/preview.mjs\` on ${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${RUNS} runs each: \`cloneAndPreview\` vs the integration guide's flow on @daytonaio/sdk 0.218.0 with its fixed 15 s sleep replaced by a 250 ms poll of the preview URL (wait-on's default), same backend (\`forge local\`), same repository, same dev server (${BOOT_MS} ms boot). Cells: median / p90 ms.`,
  '',
  '| measure | this package | official SDK + 250 ms poll | ratio |',
  '|---|---|---|---|',
  ...rows.map((r) => `| ${r.name} | ${r.ours} / ${r.oursP90} | ${r.official} / ${r.officialP90} | ${r.ratio.toFixed(2)}× |`),
  '',
  `Goals: first good answer → verified, median < 150 ms: ${rows[0].ours < 150 ? 'met' : '**missed**'}; pipeline overhead median < 300 ms: ${rows[2].ours < 300 ? 'met' : '**missed**'}. Our median per step: ${steps.map((k) => `${k} ${median(results.ours.map((r) => r.timings[k]))}`).join(', ')} ms; dev server start-up ${median(results.ours.map((r) => r.startup))} ms. The official flow checks nothing beyond one 200, so its "settle" is ~0 by construction; "listening → ready" shows what polling costs.`,
]
console.log(`\n${lines.join('\n')}\n`)
if (!process.argv.includes('--no-readme')) writeSection('preview', lines.join('\n'))
const out = join(root, 'bench', 'results')
mkdirSync(out, { recursive: true })
writeFileSync(join(out, 'preview.json'), JSON.stringify({ runs: RUNS, rows, results, date: new Date().toISOString() }, null, 2))
