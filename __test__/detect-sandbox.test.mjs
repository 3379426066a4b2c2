// Detection of a repository inside a sandbox (the embedded backend over real HTTP): the same
// answer as detecting the same files in memory, with pruned folders never read.
import test from 'node:test'
import assert from 'node:assert/strict'
import { addon, privateHome, sandboxBackend } from './helpers.mjs'

privateHome('detect-sandbox')
const { detectFrameworkSync } = addon()
const backend = await sandboxBackend()
const { daytona } = backend
test.after(() => backend.stop())

const files = {
  'package.json': JSON.stringify({
    name: 'site',
    private: true,
    scripts: { dev: 'next dev', build: 'next build', start: 'next start' },
    dependencies: { next: '15.0.3', react: '19.0.0', 'react-dom': '19.0.0' },
  }),
  'pnpm-lock.yaml': "lockfileVersion: '9.0'\n",
  '.nvmrc': '22\n',
  'app/page.tsx': 'export default function Page() { return <h1>hi</h1> }\n',
}

test('sandbox.detectFramework equals in-memory detection of the same files', async () => {
  const sandbox = await daytona.create()
  try {
    await sandbox.fs.uploadFiles([
      ...Object.entries(files).map(([p, content]) => ({ path: `workspace/site/${p}`, content })),
      // Pruned: a dependency's package.json must not change the answer.
      { path: 'workspace/site/node_modules/vite/package.json', content: '{"name":"vite"}' },
    ])
    const remote = await sandbox.detectFramework('workspace/site')
    const local = detectFrameworkSync(files)
    assert.equal(remote.framework.id, 'nextjs')
    assert.equal(remote.packageManager.name, 'pnpm')
    assert.equal(remote.nodeVersion, '22')
    assert.match(remote.devCommand, /next dev .*-H 0\.0\.0\.0/)
    assert.deepEqual(remote, local)
    const { detectFramework } = addon()
    assert.deepEqual(await detectFramework(sandbox, { path: 'workspace/site' }), remote, 'detectFramework(sandbox, { path })')
    const withPort = await sandbox.detectFramework('workspace/site', { port: 4000 })
    assert.equal(withPort.port, 4000)
    await assert.rejects(sandbox.detectFramework('workspace/missing'), { code: 'DETECT_NOT_FOUND' })
    await assert.rejects(sandbox.detectFramework('workspace/site', { port: 0 }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  } finally {
    await sandbox.delete()
  }
})
