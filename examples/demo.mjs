// `npm run demo`: the main job on the embedded backend, no cloud account needed.
//
// Serves examples/hello-app from a git smart-HTTP server on 127.0.0.1 (token auth, like
// GitHub), then runs the whole pipeline: create a sandbox → clone → detect → install → start
// the dev server → verify the preview. Prints each step with its time and the verified preview
// URL, fetches it once, and cleans up. With DAYTONA_API_KEY set it uses Daytona instead (the
// repository must then be reachable from Daytona: set DEMO_REPO_URL).
import { createRequire } from 'node:module'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
process.env.FORGE_HOME ??= mkdtempSync(join(tmpdir(), 'forge-demo-'))
const { Daytona } = require('../index.js')

const remote = Boolean(process.env.DAYTONA_API_KEY)
const daytona = remote ? new Daytona() : new Daytona({ backend: 'local' })
console.log(
  remote
    ? `backend: Daytona at ${await daytona.apiUrl()}`
    : `backend: embedded local backend at ${await daytona.apiUrl()} (FORGE_HOME=${process.env.FORGE_HOME})`,
)

// The example app as a repository on a local git server that wants a token.
const token = `demo_${Math.random().toString(36).slice(2)}`
const repos = mkdtempSync(join(tmpdir(), 'forge-demo-repos-'))
const appDir = join(here, 'hello-app')
const files = Object.fromEntries(readdirSync(appDir).map((f) => [f, readFileSync(join(appDir, f), 'utf8')]))
createRepo(repos, 'hello-app.git', 'main', files)
const git = await startGitHttp(repos, null, token)
const repoUrl = process.env.DEMO_REPO_URL ?? git.url('hello-app.git')
console.log(`repository: ${repoUrl}\n`)

let result
try {
  result = await daytona.cloneAndPreview({
    repoUrl,
    token: process.env.DEMO_REPO_URL ? process.env.DEMO_REPO_TOKEN : token,
    workspaceClass: 'medium',
    onProgress: (e) => {
      if (e.status !== 'started') console.log(`${e.status === 'finished' ? '✓' : '✗'} ${e.step.padEnd(8)} ${String(e.stepMs).padStart(6)} ms  ${e.message ?? ''}`)
    },
  })
  const t = result.timings
  console.log(`\nverified preview: ${result.previewUrl}`)
  console.log(`framework ${result.framework} on port ${result.port}; ${result.verify.attempts} probes, first good answer after ${result.verify.timeToFirstOkMs} ms of verify`)
  console.log(`timings (ms): create ${t.create}, clone ${t.clone}, detect ${t.detect}, install ${t.install}, start ${t.start}, verify ${t.verify}, total ${t.total}`)
  const res = await fetch(result.previewUrl, { headers: result.token ? { 'x-daytona-preview-token': result.token } : {} })
  const title = (await res.text()).match(/<h1>(.*?)<\/h1>/)?.[1]
  console.log(`GET ${result.previewUrl} → ${res.status} "${title}"`)
} catch (e) {
  console.error(`\npipeline failed at ${e.step ?? '?'} (${e.code}): ${e.message}`)
  for (const line of e.logTail ?? []) console.error(`  | ${line}`)
  process.exitCode = 1
} finally {
  if (result) {
    await (await daytona.getSandbox(result.sandboxId)).delete()
    console.log(`deleted sandbox ${result.sandboxId}`)
  }
  await git.close()
  rmSync(repos, { recursive: true, force: true })
}
