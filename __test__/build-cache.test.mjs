// The embedded backend keeps a dev server's build cache when its sandbox is deleted and gives
// it back with node_modules to the next preview of the same repository: a real Vite app
// (installed from the npm registry by `npm ci`, served by a real git smart-HTTP server on
// 127.0.0.1) previewed twice through cloneAndPreview. The second preview's Vite uses the
// dependencies the first one pre-bundled instead of optimizing again: its
// node_modules/.vite/deps/_metadata.json (whose browserHash a new optimization changes) is
// the first preview's, byte for byte, after the second preview verified.
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { addon, privateHome, tempDir } from './helpers.mjs'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'

privateHome('build-cache')
const { Daytona } = addon()
const daytona = new Daytona({ backend: 'local' })
const TOKEN = 'ghp_BuildCache0Token0123456789abcdef'
const METADATA = 'workspace/project/node_modules/.vite/deps/_metadata.json'

const files = {
  'package.json': JSON.stringify({
    name: 'build-cache-vite',
    private: true,
    type: 'module',
    scripts: { dev: 'vite' },
    dependencies: { react: '18.3.1', 'react-dom': '18.3.1' },
    devDependencies: { vite: '5.4.11', '@vitejs/plugin-react': '4.3.4' },
  }),
  'vite.config.js': "import { defineConfig } from 'vite'\nimport react from '@vitejs/plugin-react'\nexport default defineConfig({ plugins: [react()] })\n",
  'index.html': '<!doctype html><html><head><title>cached</title></head><body><div id="root"></div><script type="module" src="/src/main.jsx"></script></body></html>\n',
  'src/main.jsx': "import React from 'react'\nimport { createRoot } from 'react-dom/client'\ncreateRoot(document.getElementById('root')).render(<h1>cached</h1>)\n",
  '.gitignore': 'node_modules\n',
  // Committed, not resolved at run time: a registry mirror that has a new package's metadata
  // before its dependencies' (CI once got @babel/core asking for an unpublished
  // @babel/code-frame) must not fail this test. Made with `npm install --package-lock-only
  // --before=2026-09-01`, so every version in it is months old.
  'package-lock.json': readFileSync(new URL('./fixtures/build-cache-vite/package-lock.json', import.meta.url), 'utf8'),
}

let git
let root
test.before(async () => {
  root = tempDir('build-cache')
  createRepo(root, 'vite.git', 'main', files)
  git = await startGitHttp(root, null, TOKEN)
})

test.after(async () => {
  await git?.close()
  rmSync(root, { recursive: true, force: true })
})

/** `path` in the sandbox once it exists and has not changed for 3 polls a second apart. */
async function settledFile(sandbox, path) {
  let last
  let same = 0
  for (let i = 0; i < 180; i++) {
    const now = await sandbox.fs.downloadFile(path).then(String, () => undefined)
    same = now !== undefined && now === last ? same + 1 : 0
    if (same >= 3) return now
    last = now
    await new Promise((ok) => setTimeout(ok, 1000))
  }
  assert.fail(`${path} was not written`)
}

async function preview() {
  const events = []
  const r = await daytona.cloneAndPreview({ repoUrl: git.url('vite.git'), token: TOKEN, onProgress: (e) => events.push(e) })
  assert.equal(r.verify.ok, true)
  const sandbox = await daytona.getSandbox(r.sandboxId)
  const install = events.find((e) => e.step === 'install' && e.status === 'finished')?.message ?? ''
  return { r, sandbox, install }
}

test('a second preview of a Vite app gets node_modules/.vite back and Vite does not optimize again', { timeout: 900_000 }, async () => {
  const first = await preview()
  assert.doesNotMatch(first.install, /restored from cache/)
  // Vite writes its metadata once it has pre-bundled what the page imports.
  const metadata = await settledFile(first.sandbox, METADATA)
  assert.match(JSON.parse(metadata).browserHash, /^[0-9a-f]+$/)
  await first.sandbox.delete()

  const second = await preview()
  try {
    assert.match(second.install, /dependencies restored from cache \(key [0-9a-f]+, .*build caches node_modules\/\.vite/)
    // Restored as the sandbox user's own files: Vite may rewrite them.
    const owner = await second.sandbox.process.executeCommand(`stat -c %U ${METADATA} && test -w ${METADATA} && echo writable`)
    assert.equal(owner.result.trim(), 'daytona\nwritable')
    assert.equal(await settledFile(second.sandbox, METADATA), metadata)
    const logs = await second.sandbox.process.getSessionCommandLogs(second.r.sessionId, second.r.commandId)
    assert.doesNotMatch(`${logs.stdout ?? ''}${logs.stderr ?? ''}${logs.output ?? ''}`, /optimiz/i)
  } finally {
    await second.sandbox.delete()
  }
})
