// The official @daytonaio/sdk's fs, git and session operations (streaming logs with callbacks
// included) against `forge local`, unchanged.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { startForgeLocal, createRepo, addCommit, revParse, startGitHttp } from '../crates/testkit/js/forge-local.mjs'
import { tempDir } from './helpers.mjs'

const sdk = await import('@daytonaio/sdk')
const { Daytona } = sdk

let backend
let sandbox
let daytona
let repos
let server
const TOKEN = 'sdk-token-98765'

before(async () => {
  // The git server first: the backend's sandboxes may reach its port (FORGE_SANDBOX_HOST_PORTS).
  repos = tempDir('sdk-git')
  server = await startGitHttp(repos, 'alice', TOKEN)
  backend = await startForgeLocal()
  daytona = new Daytona({ apiKey: backend.apiKey, apiUrl: backend.apiUrl })
  sandbox = await daytona.create({ language: 'javascript', envVars: { GREETING: 'hi' } })
})

after(async () => {
  await sandbox?.delete().catch(() => {})
  await backend.stop()
})

test('file system operations', { timeout: 60_000 }, async () => {
  const fs = sandbox.fs
  await fs.createFolder('/home/daytona/project', '755')
  await fs.uploadFile(Buffer.from('hello world\n'), '/home/daytona/project/hello.txt')
  await fs.uploadFiles([
    { source: Buffer.from('first hello\n'), destination: '/home/daytona/project/a.txt' },
    { source: Buffer.from('second\n'), destination: '/home/daytona/project/sub/b.txt' },
  ])
  const listed = (await fs.listFiles('/home/daytona/project')).map((f) => `${f.name}:${f.isDir}`).sort()
  assert.deepEqual(listed, ['a.txt:false', 'hello.txt:false', 'sub:true'])
  const details = await fs.getFileDetails('/home/daytona/project/hello.txt')
  assert.equal(details.size, 12)
  assert.equal(details.isDir, false)

  const content = await fs.downloadFile('/home/daytona/project/hello.txt')
  assert.equal(content.toString(), 'hello world\n')
  const many = await fs.downloadFiles([{ source: '/home/daytona/project/a.txt' }, { source: '/home/daytona/project/missing.txt' }])
  assert.equal(many[0].result.toString(), 'first hello\n')
  assert.ok(many[1].error, 'a missing file gets a per-file error')

  const found = await fs.findFiles('/home/daytona/project', 'hello')
  assert.deepEqual(found.map((m) => m.file).sort(), ['/home/daytona/project/a.txt', '/home/daytona/project/hello.txt'])
  const searched = await fs.searchFiles('/home/daytona/project', '*.txt')
  assert.equal(searched.files.length, 3)

  const replaced = await fs.replaceInFiles(['/home/daytona/project/hello.txt'], 'world', 'forge')
  assert.equal(replaced[0].success, true)
  assert.equal((await fs.downloadFile('/home/daytona/project/hello.txt')).toString(), 'hello forge\n')

  await fs.setFilePermissions('/home/daytona/project/hello.txt', { mode: '600' })
  assert.equal((await fs.getFileDetails('/home/daytona/project/hello.txt')).permissions, '0600')

  await fs.moveFiles('/home/daytona/project/a.txt', '/home/daytona/project/a2.txt')
  await fs.deleteFile('/home/daytona/project/hello.txt')
  await fs.deleteFile('/home/daytona/project/sub', true)
  const left = (await fs.listFiles('/home/daytona/project')).map((f) => f.name)
  assert.deepEqual(left, ['a2.txt'])
  await assert.rejects(fs.getFileDetails('/home/daytona/project/hello.txt'), sdk.DaytonaNotFoundError)
  // confinement: ../ and absolute paths stay inside the sandbox (its own /etc/hostname, not
  // this machine's)
  assert.equal((await fs.downloadFile('../../../../../../etc/hostname')).toString(), 'sandbox\n')
})

test('git clone, status, branches, commit, push and pull with credentials', { timeout: 120_000 }, async () => {
  const bare = createRepo(repos, 'app.git', 'main', { 'README.md': 'hello\n' })
  try {
    const git = sandbox.git
    const path = 'workspace/repo'
    await assert.rejects(git.clone(server.url('app.git'), 'nope', 'main', undefined, 'alice', 'bad'), (e) => {
      assert.ok(!String(e.message).includes('bad'), 'no password in the error')
      return e instanceof sdk.DaytonaGitAuthFailedError
    })
    await git.clone(server.url('app.git'), path, 'main', undefined, 'alice', TOKEN)
    const config = (await sandbox.fs.downloadFile(`${path}/.git/config`)).toString()
    assert.ok(!config.includes(TOKEN), 'no token in .git/config')
    const remotes = await sandbox.process.executeCommand('git remote -v', path)
    assert.ok(!remotes.result.includes(TOKEN), 'no token in git remote -v')

    await sandbox.fs.uploadFile(Buffer.from('changed\n'), `${path}/README.md`)
    await sandbox.fs.uploadFile(Buffer.from('new\n'), `${path}/new.txt`)
    const status = await git.status(path)
    assert.equal(status.currentBranch, 'main')
    const names = status.fileStatus.map((f) => f.name).sort()
    assert.deepEqual(names, ['README.md', 'new.txt'])

    await git.createBranch(path, 'feature')
    let branches = await git.branches(path)
    assert.ok(branches.branches.includes('feature'))
    await git.checkoutBranch(path, 'main')
    await git.deleteBranch(path, 'feature')
    branches = await git.branches(path)
    assert.ok(!branches.branches.includes('feature'))
    await assert.rejects(git.checkoutBranch(path, 'does-not-exist'), sdk.DaytonaGitBranchNotFoundError)

    await git.add(path, ['.'])
    const commit = await git.commit(path, 'edit from the sdk', 'Bob', 'bob@example.com')
    assert.match(commit.sha, /^[0-9a-f]{40}$/)
    await git.push(path, 'alice', TOKEN)
    assert.equal(revParse(bare, 'main'), commit.sha)

    addCommit(bare, 'main', { 'other.txt': 'other\n' }, 'someone else')
    await git.pull(path, 'alice', TOKEN)
    assert.equal((await sandbox.fs.downloadFile(`${path}/other.txt`)).toString(), 'other\n')
    const finalConfig = (await sandbox.fs.downloadFile(`${path}/.git/config`)).toString()
    assert.ok(!finalConfig.includes(TOKEN))
  } finally {
    await server.close()
    rmSync(repos, { recursive: true, force: true })
  }
})

test('sessions: sync and async commands, streamed logs with callbacks', { timeout: 120_000 }, async () => {
  const proc = sandbox.process
  await proc.createSession('dev')
  const sync = await proc.executeSessionCommand('dev', { command: 'cd /tmp 2>/dev/null; export X=1; echo out; echo err >&2' })
  assert.equal(sync.exitCode, 0)
  assert.equal(sync.stdout, 'out\n')
  assert.equal(sync.stderr, 'err\n')
  const kept = await proc.executeSessionCommand('dev', { command: 'echo $X $GREETING' })
  assert.equal(kept.stdout, '1 hi\n')

  const n = 2000
  const script = `i=0; while [ $i -lt ${n} ]; do echo "out $i"; echo "err $i" >&2; if [ $((i % 500)) -eq 0 ]; then sleep 0.2; fi; i=$((i+1)); done`
  const started = await proc.executeSessionCommand('dev', { command: script, runAsync: true })
  assert.ok(started.cmdId)
  let stdout = ''
  let stderr = ''
  await proc.getSessionCommandLogs('dev', started.cmdId, (s) => (stdout += s), (s) => (stderr += s))
  const want = (tag) => Array.from({ length: n }, (_, i) => `${tag} ${i}\n`).join('')
  assert.ok(stdout === want('out'), 'every stdout line once, in order')
  assert.ok(stderr === want('err'), 'every stderr line once, in order')

  const cmd = await proc.getSessionCommand('dev', started.cmdId)
  assert.equal(cmd.exitCode, 0)
  const logs = await proc.getSessionCommandLogs('dev', started.cmdId)
  assert.equal(logs.stdout, want('out'))

  const session = await proc.getSession('dev')
  assert.equal(session.commands.length, 3)
  const all = await proc.listSessions()
  assert.deepEqual(all.map((s) => s.sessionId), ['dev'])
  await proc.deleteSession('dev')
  assert.deepEqual(await proc.listSessions(), [])
})

test('getSignedPreviewUrl opens the preview without a header; expireSignedPreviewUrl ends it', { timeout: 60_000 }, async (t) => {
  const server = "require('http').createServer((q, s) => s.end('signed ' + q.url)).listen(3100)"
  await sandbox.fs.uploadFile(Buffer.from(server), '/home/daytona/signed.js')
  await sandbox.process.createSession('signed')
  await sandbox.process.executeSessionCommand('signed', { command: 'node /home/daytona/signed.js', runAsync: true })
  const link = await sandbox.getSignedPreviewUrl(3100, 120)
  assert.equal(link.sandboxId, sandbox.id)
  assert.equal(link.port, 3100)
  assert.ok(link.url.includes(link.token), link.url)
  let body = ''
  // Until the server answers (the test's timeout bounds the wait).
  while (body !== 'signed /') {
    t.signal.throwIfAborted()
    const res = await fetch(link.url).catch(() => null)
    body = res && res.status === 200 ? await res.text() : ''
    if (!body) await new Promise((r) => setTimeout(r, 50))
  }
  await sandbox.expireSignedPreviewUrl(3100, link.token)
  assert.equal((await fetch(link.url, { redirect: 'manual' })).status, 401)
  await sandbox.process.deleteSession('signed')
})
