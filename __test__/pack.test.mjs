// Packaging: `scripts/pack.mjs` gives the main package (loader, ESM entry, typings; no binary)
// and `@smartapi-forge/daytona-linux-x64-gnu` (the binary only). Both install from their local
// tarballs into a fresh project, and the embedded backend runs through the installed package.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { installPacked, packCached } from '../scripts/pack.mjs'
import { tempDir } from './helpers.mjs'

test('tarball contents: the .node only in the platform package, no sources or tests', { timeout: 180_000 }, () => {
  const { main, platform } = packCached()
  assert.equal(main.name, '@smartapi-forge/daytona')
  assert.equal(platform.name, '@smartapi-forge/daytona-linux-x64-gnu')
  for (const f of ['package.json', 'index.js', 'binding.js', 'loader-error.js', 'wasm-fetch.js', 'index.d.ts', 'index.mjs', 'index.d.mts']) {
    assert.ok(main.files.includes(f), `main has ${f}`)
  }
  assert.deepEqual(platform.files.filter((f) => f.endsWith('.node')), ['daytona.linux-x64-gnu.node'])
  assert.ok(platform.files.includes('package.json'))
  for (const f of [...main.files, ...platform.files]) {
    assert.doesNotMatch(f, /^(src|target|crates|__test__|bench|examples|scripts|npm|dist|node_modules)\//, f)
    assert.doesNotMatch(f, /\.(rs|tgz|test\.mjs)$|^Cargo\./, f)
  }
  assert.equal(main.files.filter((f) => f.endsWith('.node')).length, 0, 'no binary in the main package')
  // The files above, the bin, LICENSE and README.md: nothing else.
  assert.ok(main.files.length <= 11, `main package stays small: ${main.files.join(', ')}`)
})

test('both tarballs install into a fresh project and the embedded backend runs through it', { timeout: 240_000 }, async (t) => {
  const packed = packCached()
  const dir = installPacked({ packed, name: 'forge-pack-' })
  const home = tempDir('pack-home')
  t.after(() => {
    rmSync(dir, { recursive: true, force: true })
    rmSync(home, { recursive: true, force: true })
  })

  // What npm installed: the main package declares the platform package optional (as
  // `napi prepublish` writes it) and that is what got resolved, with the binary in it only.
  const installed = JSON.parse(readFileSync(join(dir, 'node_modules/@smartapi-forge/daytona/package.json'), 'utf8'))
  assert.deepEqual(installed.optionalDependencies, { '@smartapi-forge/daytona-linux-x64-gnu': installed.version })
  assert.equal(installed.scripts, undefined, 'no lifecycle scripts run at install')
  assert.equal(installed.devDependencies, undefined)
  assert.ok(existsSync(join(dir, 'node_modules/@smartapi-forge/daytona-linux-x64-gnu/daytona.linux-x64-gnu.node')))
  assert.ok(!existsSync(join(dir, 'node_modules/@smartapi-forge/daytona/daytona.linux-x64-gnu.node')))

  writeFileSync(
    join(dir, 'run.cjs'),
    `const { Daytona } = require('@smartapi-forge/daytona')
;(async () => {
  const daytona = new Daytona({ backend: 'local' })
  const sandbox = await daytona.create({ envVars: { GREETING: 'hello from the tarball' } })
  const r = await sandbox.process.executeCommand('echo "$GREETING" && node -e "console.log(6*7)"')
  const listed = (await daytona.listSandboxes()).map((s) => s.id)
  await sandbox.delete()
  let gone = null
  try { await daytona.getSandbox(sandbox.id) } catch (e) { gone = e.code }
  console.log(JSON.stringify({ id: sandbox.id, exitCode: r.exitCode, result: r.result, listed, gone,
    binding: Object.keys(require.cache).find((f) => f.endsWith('.node')) }))
})().catch((e) => { console.error(e); process.exit(1) })
`,
  )
  const out = execFileSync(process.execPath, ['run.cjs'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, FORGE_HOME: home, FORGE_BACKEND: '', DAYTONA_API_KEY: '' },
  })
  const r = JSON.parse(out.trim().split('\n').pop())
  assert.equal(r.exitCode, 0)
  assert.equal(r.result, 'hello from the tarball\n42\n')
  assert.ok(r.listed.includes(r.id))
  assert.equal(r.gone, 'DAYTONA_NOT_FOUND')
  assert.match(r.binding, /node_modules\/@smartapi-forge\/daytona-linux-x64-gnu\/daytona\.linux-x64-gnu\.node$/)
})
