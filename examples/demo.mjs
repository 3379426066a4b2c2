// `npm run demo`: the main job on the embedded backend, no cloud account needed.
// Creates a sandbox, runs a command in it, prints the result and cleans up.
import { createRequire } from 'node:module'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const require = createRequire(import.meta.url)
process.env.FORGE_HOME ??= mkdtempSync(join(tmpdir(), 'forge-demo-'))
const { Daytona } = require('../index.js')

const remote = Boolean(process.env.DAYTONA_API_KEY)
const daytona = remote ? new Daytona() : new Daytona({ backend: 'local' })
console.log(`backend: ${remote ? await daytona.apiUrl() : `embedded local backend at ${await daytona.apiUrl()} (FORGE_HOME=${process.env.FORGE_HOME})`}`)

const t0 = performance.now()
const sandbox = await daytona.create({ image: 'node:22-bookworm', workspaceClass: 'medium', envVars: { NODE_ENV: 'development' } })
console.log(`created sandbox ${sandbox.id} (${sandbox.state}) in ${(performance.now() - t0).toFixed(0)} ms`)
try {
  const t1 = performance.now()
  const r = await sandbox.process.executeCommand('echo "node $(node -v) in $PWD, NODE_ENV=$NODE_ENV"', undefined, undefined, 30)
  console.log(`exec: exitCode=${r.exitCode} in ${(performance.now() - t1).toFixed(0)} ms\n${r.result.trimEnd()}`)
  const preview = await sandbox.getPreviewUrl(3000)
  console.log(`preview url of port 3000: ${preview.url}`)
  console.log('sandbox as JSON:', JSON.stringify(sandbox))
} finally {
  await sandbox.delete()
  console.log(`deleted ${sandbox.id}`)
}
