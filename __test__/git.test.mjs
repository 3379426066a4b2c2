// sandbox.git from JS against a real git smart-HTTP server (`git http-backend` behind basic auth
// on 127.0.0.1, see githttp.mjs): clone with branch, depth, commit and credentials, status,
// branches, add/commit/amend, remotes, fetch/pull/push with credentials, and no token left in
// `.git/config`, in `git remote -v` or in any error.
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { addon, privateHome, tempDir } from './helpers.mjs'
import { gitServer } from './githttp.mjs'

privateHome('git')
const { Daytona } = addon()
const daytona = new Daytona({ backend: 'local' })
const TOKEN = 'ghp_Forge0Secret0Token0123456789'

let sandbox
let server
test.before(async () => {
  // The git server first: the embedded backend (started by the first call) lets its
  // sandboxes reach that port of this machine (FORGE_SANDBOX_HOST_PORTS), and no other.
  server = await gitServer({ username: null, password: TOKEN })
  sandbox = await daytona.create()
})
test.after(async () => {
  await sandbox?.delete()
  await server?.close()
})

const sh = async (cmd) => {
  const r = await sandbox.process.executeCommand(cmd)
  assert.equal(r.exitCode, 0, `${cmd}: ${r.result}`)
  return r.result
}

/** Asserts that no trace of the token is left in the clone or its remotes. */
async function assertNoToken(repo) {
  const config = (await sandbox.fs.readFile(`${repo}/.git/config`)).toString()
  assert.ok(config.includes('127.0.0.1'), config)
  assert.ok(!config.includes(TOKEN), config)
  const remotes = await sh(`git -C ${repo} remote -v`)
  assert.ok(remotes.includes('127.0.0.1'), remotes)
  assert.ok(!remotes.includes(TOKEN), remotes)
  for (const r of await sandbox.git.listRemotes(repo)) assert.ok(!r.url.includes(TOKEN), r.url)
}

const noToken = (e) => {
  assert.ok(!String(e.message).includes(TOKEN), e.message)
  assert.ok(!JSON.stringify(e).includes(TOKEN))
  assert.ok(!String(e.stack).includes(TOKEN))
  return true
}

test('clone with credentials, branch and depth; the token is not stored anywhere', async () => {
  const git = sandbox.git
  await git.clone(server.repoUrl, 'workspace/repo', 'develop', 1, 'git', TOKEN)
  assert.equal((await sandbox.fs.readFile('workspace/repo/README.md')).toString(), '# seed\nthree\n')
  assert.equal((await sh('git -C workspace/repo rev-list --count HEAD')).trim(), '1')
  const status = await git.status('workspace/repo')
  assert.equal(status.currentBranch, 'develop')
  assert.deepEqual(status.fileStatus, [])
  await assertNoToken('workspace/repo')

  // The guide's flow: the token in the URL, moved out of it by the client.
  const authenticated = server.repoUrl.replace('http://', `http://x-access-token:${TOKEN}@`)
  await git.clone(authenticated, 'workspace/project')
  assert.equal((await sh('git -C workspace/project rev-list --count HEAD')).trim(), '3')
  assert.equal((await git.status('workspace/project')).currentBranch, 'main')
  await assertNoToken('workspace/project')

  // A commit id (string) instead of a depth.
  const first = server.git('rev-list', '--max-parents=0', 'main').trim()
  await git.clone(server.repoUrl, 'workspace/at-first', undefined, first, 'git', TOKEN)
  assert.equal((await sh('git -C workspace/at-first rev-parse HEAD')).trim(), first)
  assert.equal((await sandbox.fs.readFile('workspace/at-first/README.md')).toString(), '# seed\none\n')
})

test('clone failures are typed and never show the token', async () => {
  const git = sandbox.git
  await assert.rejects(git.clone(server.repoUrl, 'workspace/denied', undefined, undefined, 'git', `${TOKEN}x`), noToken)
  await assert.rejects(
    git.clone(server.repoUrl.replace('http://', `http://x-access-token:${TOKEN}0@`), 'workspace/denied2'),
    noToken,
  )
  await assert.rejects(git.clone(`${server.url}/missing.git`, 'workspace/missing', undefined, undefined, 'git', TOKEN), noToken)
  await assert.rejects(git.clone(server.repoUrl, ''), { code: 'DAYTONA_INVALID_ARGUMENT' })
  await assert.rejects(git.status('workspace/not-a-repo'))
})

test('status after edits, branches, add, commit, commitAmend', async () => {
  const git = sandbox.git
  const repo = 'workspace/edit'
  await git.clone(server.repoUrl, repo, undefined, undefined, 'git', TOKEN)
  await sandbox.fs.uploadFile('changed\n', `${repo}/README.md`)
  await sandbox.fs.uploadFile('new\n', `${repo}/src/index.js`)
  await sandbox.fs.uploadFile('staged\n', `${repo}/staged.txt`)
  await git.add(repo, ['staged.txt'])
  let status = await git.status(repo)
  const by = Object.fromEntries(status.fileStatus.map((f) => [f.name, f]))
  assert.equal(by['README.md'].status, 'modified')
  assert.equal(by['staged.txt'].status, 'added')
  assert.equal(by['staged.txt'].staging, 'Added')
  assert.ok(Object.keys(by).some((n) => n.startsWith('src')), JSON.stringify(status))
  assert.ok(Object.values(by).filter((f) => f.name.startsWith('src')).every((f) => f.status === 'untracked'))
  assert.equal(status.ahead, 0)
  assert.equal(status.behind, 0)
  assert.deepEqual(JSON.parse(JSON.stringify(status)), status)

  const branches = await git.branches(repo)
  assert.ok(branches.branches.includes('main'))
  await git.createBranch(repo, 'feature/new-feature')
  assert.ok((await git.branches(repo)).branches.includes('feature/new-feature'))
  await git.checkoutBranch(repo, 'feature/new-feature')
  assert.equal((await git.status(repo)).currentBranch, 'feature/new-feature')

  await git.add(repo, ['.'])
  const c = await git.commit(repo, 'feat: add new feature', { name: 'Your Name', email: 'you@example.com' })
  assert.match(c.sha, /^[0-9a-f]{40}$/)
  assert.equal((await sh(`git -C ${repo} rev-parse HEAD`)).trim(), c.sha)
  assert.equal((await sh(`git -C ${repo} log -1 --format=%an/%ae/%s`)).trim(), 'Your Name/you@example.com/feat: add new feature')
  assert.deepEqual((await git.status(repo)).fileStatus, [])

  await sandbox.fs.uploadFile('more\n', `${repo}/src/more.js`)
  await git.add(repo, ['src/more.js'])
  const amended = await git.commitAmend(repo, 'feat: add new feature (updated)')
  assert.match(amended.sha, /^[0-9a-f]{40}$/)
  assert.notEqual(amended.sha, c.sha)
  assert.equal((await sh(`git -C ${repo} log -1 --format=%an/%s`)).trim(), 'Your Name/feat: add new feature (updated)')
  assert.equal((await sh(`git -C ${repo} rev-list --count HEAD`)).trim(), '4')
  assert.match(await sh(`git -C ${repo} show --stat HEAD`), /src\/more\.js/)
  const kept = await git.commitAmend(repo)
  assert.equal((await sh(`git -C ${repo} log -1 --format=%s`)).trim(), 'feat: add new feature (updated)')
  assert.match(kept.sha, /^[0-9a-f]{40}$/)

  // The official SDK's commit signature too.
  await sandbox.fs.uploadFile('x\n', `${repo}/x.txt`)
  await git.add(repo, ['x.txt'])
  const sdk = await git.commit(repo, 'sdk style', 'SDK', 'sdk@example.com')
  assert.equal((await sh(`git -C ${repo} log -1 --format=%an`)).trim(), 'SDK')
  assert.match(sdk.sha, /^[0-9a-f]{40}$/)

  // Daytona's daemon checks a new branch out; deleting needs another one checked out.
  await git.createBranch(repo, 'feature/old-feature')
  await git.checkoutBranch(repo, 'main')
  assert.equal((await git.status(repo)).currentBranch, 'main')
  await git.deleteBranch(repo, 'feature/old-feature')
  assert.ok(!(await git.branches(repo)).branches.includes('feature/old-feature'))
  await assert.rejects(git.checkoutBranch(repo, 'no-such-branch'))
})

test('push, fetch and pull with credentials; remotes; failures show no token', async () => {
  const git = sandbox.git
  const repo = 'workspace/sync'
  await git.clone(server.repoUrl, repo, undefined, undefined, 'git', TOKEN)
  await sandbox.fs.uploadFile('pushed\n', `${repo}/pushed.txt`)
  await git.add(repo, ['.'])
  const { sha } = await git.commit(repo, 'from the sandbox', { name: 'Sandbox', email: 's@example.com' })

  await assert.rejects(git.push(repo, 'origin', 'main'), noToken)
  await assert.rejects(git.push(repo, 'origin', 'main', 'git', `${TOKEN}x`), noToken)
  await git.push(repo, 'origin', 'main', 'git', TOKEN)
  assert.equal(server.git('rev-parse', 'main').trim(), sha)
  assert.equal((await git.status(repo)).ahead, 0)

  // Someone else pushes; fetch sees it, pull brings it.
  const other = tempDir('git-other')
  const authed = server.repoUrl.replace('http://', `http://u:${TOKEN}@`)
  // Asynchronous: the server runs in this process.
  const run = (...args) =>
    promisify(execFile)('git', args, {
      cwd: other,
      env: { ...process.env, GIT_AUTHOR_NAME: 'O', GIT_AUTHOR_EMAIL: 'o@e', GIT_COMMITTER_NAME: 'O', GIT_COMMITTER_EMAIL: 'o@e' },
    })
  await run('clone', '-q', authed, 'c')
  writeFileSync(join(other, 'c', 'upstream.txt'), 'from upstream\n')
  await run('-C', 'c', 'add', '.')
  await run('-C', 'c', 'commit', '-q', '-m', 'upstream change')
  await run('-C', 'c', 'push', '-q', 'origin', 'main')

  await assert.rejects(git.fetch(repo, 'origin', 'git', 'wrong'), noToken)
  await git.fetch(repo, 'origin', 'git', TOKEN)
  assert.equal((await git.status(repo)).behind, 1)
  await git.pull(repo, 'origin', 'main', 'git', TOKEN)
  assert.equal((await sandbox.fs.readFile(`${repo}/upstream.txt`)).toString(), 'from upstream\n')
  assert.equal((await git.status(repo)).behind, 0)
  await assertNoToken(repo)

  await git.addRemote(repo, 'mirror', `${server.url}/mirror.git`)
  const remotes = await git.listRemotes(repo)
  assert.deepEqual(
    remotes.map((r) => r.name).sort(),
    ['mirror', 'origin'],
  )
  assert.equal(remotes.find((r) => r.name === 'mirror').url, `${server.url}/mirror.git`)
  await assert.rejects(
    git.addRemote(repo, 'leaky', server.repoUrl.replace('http://', `http://x:${TOKEN}@`)),
    (e) => e.code === 'DAYTONA_INVALID_ARGUMENT' && noToken(e),
  )
  await assertNoToken(repo)
})

test('commitAmend with a new author, as in the guide', async () => {
  const git = sandbox.git
  const repo = 'workspace/amend-author'
  await git.clone(server.repoUrl, repo, undefined, undefined, 'git', TOKEN)
  await sandbox.fs.uploadFile('a\n', `${repo}/a.txt`)
  await git.add(repo, ['a.txt'])
  await git.commit(repo, 'first', { name: 'Your Name', email: 'you@example.com' })
  const amended = await git.commitAmend(repo, 'first (updated)', { name: 'Other', email: 'o@example.com' })
  assert.match(amended.sha, /^[0-9a-f]{40}$/)
  assert.equal((await sh(`git -C ${repo} log -1 --format=%an/%ae/%s`)).trim(), 'Other/o@example.com/first (updated)')
})
