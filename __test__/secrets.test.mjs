// Secrets (issue 8): distinctive API key, JWT, git token and preview token values; every
// operation of the JS API (failing ones included) runs in a child Node process with
// FORGE_LOG=debug against two `forge local` backends (one keyed with the API key, one with the
// JWT) and a git http-backend server behind basic auth. None of the secrets may appear in any
// error (message, stack, util.inspect, JSON), any returned object (util.inspect, JSON), the
// child's or the backends' stdout/stderr, any file of the sandboxes on disk, or the
// `git config --list` of a cloned repository.
//
// The same file is the child: with FORGE_SECRETS_CHILD=1 it runs the operations and prints one
// JSON report line (operation counts and where a secret was seen, never the secret itself).
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { readFileSync, readdirSync, lstatSync, existsSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import util from 'node:util'
import { addon, deadPort, tempDir } from './helpers.mjs'
import { gitServer } from './githttp.mjs'
import { forgeBin } from '../crates/testkit/js/forge-local.mjs'

const SECRETS = {
  apiKey: 'fsk_ApiKey_SECRET_7c41e9d2b8',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJGT1JHRSJ9.JwtSECRET_5a0f3c',
  gitToken: 'ghp_GitToken_SECRET_93be17a4d6',
}
const ORG = 'org-secrets-test'

if (process.env.FORGE_SECRETS_CHILD === '1') {
  await child()
} else {
  parentTests()
}

// ---------------------------------------------------------------------------------------------
// The child: every operation, results and errors checked in place.

async function child() {
  const env = JSON.parse(process.env.FORGE_SECRETS_ENV)
  const { Daytona, detectFramework } = addon()
  const secrets = { ...SECRETS }
  const previewTokens = []
  const leaks = []
  const counts = { ok: 0, failed: 0, checked: 0 }

  /** Every secret (preview tokens as they become known), except those `allowed` in this place. */
  const scan = (op, where, text, allowed = []) => {
    counts.checked++
    const all = { ...secrets, ...Object.fromEntries(previewTokens.map((t, i) => [`previewToken${i}`, t])) }
    for (const [name, value] of Object.entries(all)) {
      if (allowed.includes(value)) continue
      if (String(text).includes(value)) leaks.push(`${op}: ${where} contains ${name}`)
    }
  }
  const inspectAll = (v) => util.inspect(v, { depth: 8, showHidden: true, getters: true })
  const json = (v) => {
    try {
      return JSON.stringify(v) ?? ''
    } catch (e) {
      return `<unserialisable: ${e.message}>`
    }
  }
  /** Every string inside `v`, Buffers and typed arrays decoded (inspect shows them as hex). */
  const deepText = (v, seen = new Set(), depth = 0) => {
    if (v == null || depth > 12) return ''
    if (typeof v === 'string') return v
    if (typeof v !== 'object' && typeof v !== 'function') return String(v)
    if (seen.has(v)) return ''
    seen.add(v)
    if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1')
    let out = ''
    for (const k of Object.getOwnPropertyNames(v)) {
      let x
      try {
        x = v[k]
      } catch {
        continue
      }
      out += `${k}\n${deepText(x, seen, depth + 1)}\n`
    }
    return out
  }
  const checkValue = (op, v, allowed) => {
    scan(op, 'strings and bytes in result', deepText(v), allowed)
    scan(op, 'util.inspect(result)', inspectAll(v), allowed)
    scan(op, 'JSON(result)', json(v), allowed)
    scan(op, 'String(result)', Buffer.isBuffer(v) ? v.toString() : String(v), allowed)
  }
  const checkError = (op, e) => {
    scan(op, 'error.message', e?.message)
    scan(op, 'error.stack', e?.stack)
    scan(op, 'util.inspect(error)', inspectAll(e))
    scan(op, 'JSON(error)', json(e))
    scan(op, 'String(error)', String(e))
    for (const k of Object.getOwnPropertyNames(e ?? {})) scan(op, `error.${k}`, inspectAll(e[k]))
  }
  /**
   * Runs one operation; `expect` is 'ok', 'fail' or 'any'. `link: true`: the result is a
   * preview link, whose own token is remembered (and allowed in that result only).
   */
  const op = async (name, fn, { expect = 'ok', link = false } = {}) => {
    try {
      const r = await fn()
      counts.ok++
      // A preview link's token, or restartPreview's (`verified.token`): handed out on purpose.
      const token = r?.token ?? r?.verified?.token
      const allowed = link && token ? [token] : []
      checkValue(name, r, allowed)
      if (link && token && !previewTokens.includes(token)) previewTokens.push(token)
      if (expect === 'fail') leaks.push(`${name}: expected a failure, got success`)
      return r
    } catch (e) {
      counts.failed++
      checkError(name, e)
      if (expect === 'ok') leaks.push(`${name}: failed: ${e?.code} ${e?.message}`)
      return undefined
    }
  }

  // Canary: the checks find a secret where there is one (in bytes, in an error).
  checkValue('canary', { files: [{ content: Buffer.from(`x${secrets.gitToken}x`) }] })
  checkError('canary', new Error(`key ${secrets.apiKey}`))
  const canaries = leaks.filter((l) => l.startsWith('canary: '))
  if (!canaries.some((l) => l.includes('bytes')) || !canaries.some((l) => l.includes('error.message'))) {
    leaks.push(`the checks missed the canaries: ${JSON.stringify(canaries)}`)
  }
  leaks.splice(0, leaks.length, ...leaks.filter((l) => !l.startsWith('canary: ')))

  // --- Daytona: construct (good and bad), create, get, list.
  const daytona = new Daytona({ apiKey: secrets.apiKey, apiUrl: env.apiUrl })
  checkValue('new Daytona', daytona)
  await op('new Daytona(bad apiUrl with key in userinfo)', () => new Daytona({ apiKey: secrets.apiKey, apiUrl: `ftp://x:${secrets.apiKey}@127.0.0.1/api` }).listSandboxes(), { expect: 'fail' })
  await op('new Daytona(jwt without org)', () => new Daytona({ jwtToken: secrets.jwt, apiUrl: env.jwtApiUrl }).listSandboxes(), { expect: 'fail' })
  const wrong = new Daytona({ apiKey: `${secrets.apiKey}-WRONG`, apiUrl: env.apiUrl })
  await op('wrong key: list', () => wrong.listSandboxes(), { expect: 'fail' })
  await op('wrong key: create', () => wrong.create(), { expect: 'fail' })
  await op('wrong key: get', () => wrong.getSandbox('nope'), { expect: 'fail' })
  const dead = new Daytona({ apiKey: secrets.apiKey, apiUrl: `http://u:${secrets.apiKey}@127.0.0.1:${env.deadPort}/api` })
  await op('dead api url: list', () => dead.listSandboxes(), { expect: 'fail' })

  const sandbox = await op('create', () => daytona.create({ public: false, envVars: { PLAIN: 'value' }, labels: { suite: 'secrets' } }))
  if (!sandbox) return report()
  await op('create(bad class)', () => daytona.create({ workspaceClass: 'huge' }), { expect: 'fail' })
  await op('get', () => daytona.get(sandbox.id))
  await op('getSandbox(unknown)', () => daytona.getSandbox('no-such-sandbox'), { expect: 'fail' })
  await op('listSandboxes', () => daytona.listSandboxes({ labels: { suite: 'secrets' } }))
  await op('apiUrl', () => daytona.apiUrl())
  await op('toJSON', () => sandbox.toJSON())
  await op('refresh', () => sandbox.refresh())

  // --- Preview links of a non-public sandbox, and a live and a dead port through them.
  const link = await op('getPreviewLink', () => sandbox.getPreviewLink(env.livePort), { link: true })
  await op('getPreviewUrl', () => sandbox.getPreviewUrl(env.deadSandboxPort), { link: true })
  await op('createSession(web)', () => sandbox.process.createSession('web'))
  const serve = `node -e "require('http').createServer((q, s) => s.end('ok ' + q.url)).listen(${env.livePort}, '0.0.0.0')"`
  await op('executeSessionCommand(server)', () => sandbox.process.executeSessionCommand('web', { command: serve, runAsync: true }))
  if (link) {
    for (const [what, url, headers] of [
      ['preview (header token, live port)', link.url, { 'X-Daytona-Preview-Token': link.token }],
      ['preview (no token)', link.url, {}],
      ['preview (wrong token)', link.url, { 'X-Daytona-Preview-Token': `${link.token}x` }],
    ]) {
      await op(what, async () => {
        for (let i = 0; i < 50; i++) {
          const r = await fetch(url, { headers, redirect: 'manual' })
          const body = await r.text()
          if (r.status !== 502 || i === 49) return { status: r.status, body, headers: Object.fromEntries([...r.headers].filter(([k]) => k !== 'set-cookie')) }
          await new Promise((res) => setTimeout(res, 100))
        }
      })
    }
    const deadLink = await op('getPreviewLink(dead port)', () => sandbox.getPreviewLink(env.deadSandboxPort), { link: true })
    if (deadLink) {
      await op('preview (dead port)', async () => {
        const r = await fetch(deadLink.url, { headers: { 'X-Daytona-Preview-Token': deadLink.token }, redirect: 'manual' })
        return { status: r.status, body: await r.text() }
      })
    }
  }

  // --- process.
  const p = sandbox.process
  await op('executeCommand', () => p.executeCommand('echo hello; env | sort; cat ~/.gitconfig ~/.git-credentials 2>&1; ls -la ~', undefined, { EXTRA: '1' }, 30))
  await op('executeCommand(exit 3)', () => p.executeCommand('exit 3'))
  await op('executeCommand(bad cwd)', () => p.executeCommand('pwd', '/no/such/dir'), { expect: 'any' })
  await op('executeCommand(timeout)', () => p.executeCommand('sleep 5', undefined, undefined, 1), { expect: 'fail' })
  await op('exec', () => p.exec('echo out; echo err >&2', { env: { A: 'b' } }))
  await op('exec(timeout)', () => p.exec('sleep 5', { timeout: 1 }), { expect: 'fail' })
  await op('codeRun', () => p.codeRun('console.log(process.argv.slice(2).join(","))', { argv: ['a', 'b'] }))
  await op('codeRun(throws)', () => p.codeRun('throw new Error("boom")'), { expect: 'any' })
  await op('createSession', () => p.createSession('s1'))
  await op('createSession(duplicate)', () => p.createSession('s1'), { expect: 'fail' })
  const sync = await op('executeSessionCommand(sync)', () => p.executeSessionCommand('s1', { command: 'echo sync; echo e >&2' }))
  const asyncCmd = await op('executeSessionCommand(async)', () => p.executeSessionCommand('s1', { command: 'for i in 1 2 3; do echo line $i; sleep 0.1; done; read x; echo got $x', runAsync: true }))
  if (asyncCmd) {
    await op('sendSessionCommandInput', () => p.sendSessionCommandInput('s1', asyncCmd.cmdId, 'input\n'))
    await op('getSessionCommandLogs(callbacks)', () => p.getSessionCommandLogs('s1', asyncCmd.cmdId, () => {}, () => {}))
    await op('streamSessionCommandLogs', async () => {
      const chunks = []
      for await (const c of p.streamSessionCommandLogs('s1', asyncCmd.cmdId)) chunks.push(c)
      return chunks
    })
    await op('getSessionCommandLogs', () => p.getSessionCommandLogs('s1', asyncCmd.cmdId))
    await op('getSessionCommandStatus', () => p.getSessionCommandStatus('s1', asyncCmd.cmdId))
    await op('getSessionCommand', () => p.getSessionCommand('s1', asyncCmd.cmdId))
  }
  const long = await op('executeSessionCommand(long)', () => p.executeSessionCommand('s1', { command: 'sleep 30', runAsync: true }))
  if (long) await op('killSessionCommand', () => p.killSessionCommand('s1', long.cmdId))
  void sync
  await op('getSession', () => p.getSession('s1'))
  await op('listSessions', () => p.listSessions())
  await op('getSession(unknown)', () => p.getSession('nope'), { expect: 'fail' })
  await op('getSessionCommandLogs(unknown)', () => p.getSessionCommandLogs('s1', 'nope'), { expect: 'fail' })
  await op('executeSessionCommand(unknown session)', () => p.executeSessionCommand('nope', { command: 'true' }), { expect: 'fail' })
  await op('killSessionCommand(unknown)', () => p.killSessionCommand('s1', 'nope'), { expect: 'fail' })
  await op('deleteSession', () => p.deleteSession('s1'))
  await op('deleteSession(unknown)', () => p.deleteSession('s1'), { expect: 'fail' })

  // --- fs.
  const fs = sandbox.fs
  await op('createFolder', () => fs.createFolder('data', '755'))
  await op('uploadFile', () => fs.uploadFile('hello\n', 'data/a.txt'))
  await op('uploadFile(buffer)', () => fs.uploadFile(Buffer.from('b\n'), 'data/b.txt'))
  const local = join(tempDir('secrets-up'), 'local.txt')
  writeFileSync(local, 'from disk\n')
  await op('uploadFile(localPath)', () => fs.uploadFile({ localPath: local }, 'data/c.txt'))
  await op('uploadFiles', () => fs.uploadFiles([{ content: 'd', path: 'data/d.txt' }, { localPath: local, path: 'data/e.txt' }]))
  await op('listFiles', () => fs.listFiles('data'))
  await op('getFileDetails', () => fs.getFileDetails('data/a.txt'))
  await op('readFile', () => fs.readFile('data/a.txt'))
  await op('downloadFile', () => fs.downloadFile('data/a.txt'))
  await op('downloadFile(localPath)', () => fs.downloadFile('data/a.txt', `${local}.down`))
  await op('downloadFiles', () => fs.downloadFiles(['data/a.txt', 'data/missing.txt']))
  await op('searchFiles', () => fs.searchFiles('data', 'hello'))
  await op('findFiles', () => fs.findFiles('data', 'hello'))
  await op('findFilesByName', () => fs.findFilesByName('data', '*.txt'))
  await op('replaceInFile', () => fs.replaceInFile('data/a.txt', 'hello', 'bye'))
  await op('replaceInFiles', () => fs.replaceInFiles(['data/a.txt', 'data/missing.txt'], 'bye', 'hi'))
  await op('chmod', () => fs.chmod('data/a.txt', '600'))
  await op('setFilePermissions', () => fs.setFilePermissions('data/a.txt', { mode: '644' }))
  await op('moveFiles', () => fs.moveFiles('data/b.txt', 'data/b2.txt'))
  await op('deleteFile', () => fs.deleteFile('data/b2.txt'))
  await op('deleteFiles', () => fs.deleteFiles(['data/d.txt', 'data/e.txt']))
  for (const [name, fn] of [
    ['readFile(missing)', () => fs.readFile('data/missing.txt')],
    ['readFile(../ escape)', () => fs.readFile('../../../../etc/shadow')],
    ['listFiles(missing)', () => fs.listFiles('nope')],
    ['getFileDetails(missing)', () => fs.getFileDetails('nope')],
    ['deleteFile(missing)', () => fs.deleteFile('nope')],
    ['deleteFiles(missing)', () => fs.deleteFiles(['nope1', 'nope2'])],
    ['moveFiles(missing)', () => fs.moveFiles('nope', 'nope2')],
    ['chmod(bad mode)', () => fs.chmod('data/a.txt', 'rwx')],
    ['uploadFile(bad local path)', () => fs.uploadFile({ localPath: '/no/such/file' }, 'x')],
    ['replaceInFile(missing)', () => fs.replaceInFile('nope', 'a', 'b')],
  ]) {
    await op(name, fn, { expect: 'fail' })
  }
  // Clamped at the sandbox's `/` (confined, so it may succeed): either way nothing leaks.
  await op('createFolder(../)', () => fs.createFolder('../../../../outside'), { expect: 'any' })

  // --- git, with username + password (the token) and with the token in the URL.
  const git = sandbox.git
  await op('clone(credentials)', () => git.clone(env.repoUrl, 'workspace/repo', undefined, undefined, 'git', secrets.gitToken))
  await op('clone(token in URL)', () => git.clone(env.repoUrl.replace('http://', `http://x-access-token:${secrets.gitToken}@`), 'workspace/repo2'))
  await op('clone(wrong password)', () => git.clone(env.repoUrl, 'workspace/denied', undefined, undefined, 'git', `${secrets.gitToken}-WRONG`), { expect: 'fail' })
  await op('clone(wrong token in URL)', () => git.clone(env.repoUrl.replace('http://', `http://x:${secrets.gitToken}-WRONG@`), 'workspace/denied2'), { expect: 'fail' })
  await op('clone(missing repo)', () => git.clone(`${env.gitBase}/missing.git`, 'workspace/missing', undefined, undefined, 'git', secrets.gitToken), { expect: 'fail' })
  await op('clone(dead host)', () => git.clone(`http://x:${secrets.gitToken}@127.0.0.1:${env.deadPort}/r.git`, 'workspace/dead'), { expect: 'fail' })
  const repo = 'workspace/repo'
  await op('status', () => git.status(repo))
  await op('branches', () => git.branches(repo))
  await op('createBranch', () => git.createBranch(repo, 'feature'))
  await op('checkoutBranch', () => git.checkoutBranch(repo, 'feature'))
  await op('uploadFile(in repo)', () => fs.uploadFile('change\n', `${repo}/change.txt`))
  await op('add', () => git.add(repo, ['.']))
  await op('commit', () => git.commit(repo, 'change', { name: 'T', email: 't@example.com' }))
  await op('commitAmend', () => git.commitAmend(repo, 'change (amended)'))
  await op('push(credentials)', () => git.push(repo, 'origin', 'feature', 'git', secrets.gitToken))
  await op('push(wrong password)', () => git.push(repo, 'origin', 'feature', 'git', `${secrets.gitToken}-WRONG`), { expect: 'fail' })
  await op('fetch(credentials)', () => git.fetch(repo, 'origin', 'git', secrets.gitToken))
  await op('fetch(wrong password)', () => git.fetch(repo, 'origin', 'git', `${secrets.gitToken}-WRONG`), { expect: 'fail' })
  await op('checkoutBranch(main)', () => git.checkoutBranch(repo, 'main'))
  await op('pull(credentials)', () => git.pull(repo, 'origin', 'main', 'git', secrets.gitToken))
  await op('pull(wrong password)', () => git.pull(repo, 'origin', 'main', 'git', `${secrets.gitToken}-WRONG`), { expect: 'fail' })
  await op('addRemote', () => git.addRemote(repo, 'mirror', env.repoUrl))
  await op('addRemote(credentials in URL)', () => git.addRemote(repo, 'leaky', env.repoUrl.replace('http://', `http://x:${secrets.gitToken}@`)), { expect: 'fail' })
  await op('listRemotes', () => git.listRemotes(repo))
  await op('deleteBranch', () => git.deleteBranch(repo, 'feature'))
  await op('status(not a repo)', () => git.status('data'), { expect: 'fail' })
  await op('checkoutBranch(missing)', () => git.checkoutBranch(repo, 'no-such-branch'), { expect: 'fail' })

  // --- detection inside the sandbox.
  await op('uploadFile(package.json)', () => fs.uploadFile(JSON.stringify({ dependencies: { next: '15.0.0' }, scripts: { dev: 'next dev' } }), 'workspace/app/package.json'))
  await op('sandbox.detectFramework', () => sandbox.detectFramework('workspace/app'))
  await op('detectFramework(sandbox)', () => detectFramework(sandbox, { path: 'workspace/app' }))
  await op('detectFramework(missing path)', () => sandbox.detectFramework('workspace/none'), { expect: 'any' })

  // --- PIPELINE: cloneAndPreview and every step with the git token; the preview token of a
  // private sandbox is allowed only in the results that hand it out (`link: true`).
  const dev = `node -e "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)"`
  const piped = await op(
    'cloneAndPreview',
    () => daytona.cloneAndPreview({ repoUrl: env.repoUrl, username: 'git', token: secrets.gitToken, installCommand: 'true', devCommand: dev, port: 3100, onProgress: (e) => checkValue('onProgress', e) }),
    { link: true },
  )
  await op('cloneAndPreview(wrong token)', () => daytona.cloneAndPreview({ repoUrl: env.repoUrl, username: 'git', token: `${secrets.gitToken}-WRONG` }), { expect: 'fail' })
  await op('cloneAndPreview(token in URL, wrong)', () => daytona.cloneAndPreview({ repoUrl: env.repoUrl.replace('http://', `http://git:${secrets.gitToken}-WRONG@`) }), { expect: 'fail' })
  await op('cloneAndPreview(app exits)', () => daytona.cloneAndPreview({ repoUrl: env.repoUrl, username: 'git', token: secrets.gitToken, installCommand: 'true', devCommand: 'env; exit 3', keepOnFailure: false }), { expect: 'fail' })
  if (piped) {
    const sid = piped.sandboxId
    await op('checkHealth', () => daytona.checkHealth({ sandboxId: sid, port: piped.port }))
    await op('verifyPreview', () => daytona.verifyPreview({ sandboxId: sid, port: piped.port }), { link: true })
    await op('cloneRepository', () => daytona.cloneRepository({ sandboxId: sid, repoUrl: env.repoUrl, username: 'git', token: secrets.gitToken, path: 'workspace/step-clone' }))
    await op('cloneRepository(wrong token)', () => daytona.cloneRepository({ sandboxId: sid, repoUrl: env.repoUrl, username: 'git', token: `${secrets.gitToken}-WRONG`, path: 'workspace/step-denied' }), { expect: 'fail' })
    await op('detectFramework(step)', () => daytona.detectFramework({ sandboxId: sid, path: 'workspace/step-clone' }))
    await op('installDependencies(fails)', () => daytona.installDependencies({ sandboxId: sid, path: 'workspace/step-clone', command: 'env; git -C . config --list; exit 9' }), { expect: 'fail' })
    await op('restartPreview', () => daytona.restartPreview({ sandboxId: sid, path: piped.path, sessionId: piped.sessionId, command: dev, port: 3100 }), { link: true })
    await op('delete(pipeline sandbox)', async () => (await daytona.getSandbox(sid)).delete())
  }
  // --- END PIPELINE

  // --- JWT client on the backend keyed with the JWT.
  const jwt = new Daytona({ jwtToken: secrets.jwt, organizationId: ORG, apiUrl: env.jwtApiUrl })
  const jsb = await op('jwt: create', () => jwt.create())
  await op('jwt: list', () => jwt.listSandboxes())
  await op('jwt: get(unknown)', () => jwt.get('nope'), { expect: 'fail' })
  if (jsb) {
    await op('jwt: executeCommand', () => jsb.process.executeCommand('env | sort'))
    await op('jwt: uploadFile', () => jsb.fs.uploadFile('x', 'x.txt'))
    await op('jwt: readFile(missing)', () => jsb.fs.readFile('nope'), { expect: 'fail' })
    await op('jwt: clone', () => jsb.git.clone(env.repoUrl, 'workspace/repo', undefined, undefined, 'git', secrets.gitToken))
    await op('jwt: getPreviewLink', () => jsb.getPreviewLink(3000), { link: true })
  }
  await op('jwt wrong: list', () => new Daytona({ jwtToken: `${secrets.jwt}-WRONG`, organizationId: ORG, apiUrl: env.jwtApiUrl }).listSandboxes(), { expect: 'fail' })

  // --- lifecycle: stop/start (a new preview token), delete of a second sandbox.
  await op('stop', () => sandbox.stop())
  await op('start', () => sandbox.start())
  await op('getPreviewLink(after restart)', () => sandbox.getPreviewLink(3000), { link: true })
  const other = await op('create(second)', () => daytona.create({ public: false }))
  if (other) {
    await op('archive(started)', () => other.archive(), { expect: 'any' })
    await op('stop(second)', () => other.stop(), { expect: 'any' })
    await op('delete', () => other.delete())
    await op('delete(again)', () => other.delete(), { expect: 'fail' })
    await op('process on deleted', () => other.process.executeCommand('true'), { expect: 'fail' })
  }

  // The sandboxes to inspect on disk, and the preview tokens, for the parent.
  writeFileSync(env.outFile, JSON.stringify({ sandboxes: [sandbox.id, jsb?.id].filter(Boolean), previewTokens }))
  return report()

  function report() {
    console.log(JSON.stringify({ report: { counts, leaks } }))
  }
}

// ---------------------------------------------------------------------------------------------
// The parent: backends, git server, the child, and the checks of everything it left behind.

/** `forge local --json` keyed by `FORGE_LOCAL_KEY` (never argv), with its output captured. */
async function startBackend(key, home) {
  const child = spawn(forgeBin(), ['local', '--json', '--home', home], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FORGE_LOG: 'debug', RUST_LOG: 'debug', DAYTONA_API_KEY: key, FORGE_LOCAL_KEY: key },
  })
  let out = ''
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  const lines = createInterface({ input: child.stdout })
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('forge local did not start within 60 s')), 60_000)
    child.once('exit', (code) => reject(new Error(`forge local exited early with ${code}: ${err}`)))
    lines.once('line', (line) => {
      clearTimeout(timer)
      resolve(JSON.parse(line))
    })
  })
  lines.on('line', (l) => (out += `${l}\n`))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return {
    ...info,
    output: () => out + err,
    stop: async () => {
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(t)
    },
  }
}

/** Every regular file under `dir` (symlinks not followed). */
function walk(dir, out = []) {
  if (!existsSync(dir)) return out
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    const st = lstatSync(p)
    if (st.isDirectory()) walk(p, out)
    else if (st.isFile()) out.push(p)
  }
  return out
}

function parentTests() {
  const homes = []
  let apiBackend
  let jwtBackend
  let git
  let result

  test.before(async () => {
    homes.push(tempDir('secrets-api'), tempDir('secrets-jwt'))
    git = await gitServer({ username: null, password: SECRETS.gitToken })
    apiBackend = await startBackend(SECRETS.apiKey, homes[0])
    jwtBackend = await startBackend(SECRETS.jwt, homes[1])
    const scratch = tempDir('secrets-out')
    homes.push(scratch)
    const outFile = join(scratch, 'out.json')
    const childEnv = {
      apiUrl: apiBackend.apiUrl,
      jwtApiUrl: jwtBackend.apiUrl,
      repoUrl: git.repoUrl,
      gitBase: git.url,
      deadPort: await deadPort(),
      livePort: 8000 + Math.floor(Math.random() * 900),
      deadSandboxPort: 9950,
      outFile,
    }
    const node = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      env: {
        ...process.env,
        FORGE_SECRETS_CHILD: '1',
        FORGE_SECRETS_ENV: JSON.stringify(childEnv),
        FORGE_LOG: 'debug',
        FORGE_HOME: join(scratch, 'home'),
        TMPDIR: scratch,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    node.stdout.on('data', (d) => (stdout += d))
    node.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => node.kill('SIGKILL'), 240_000)
    const code = await new Promise((resolve) => node.once('exit', (c, s) => resolve(c ?? s)))
    clearTimeout(timer)
    const reportLine = stdout.split('\n').find((l) => l.startsWith('{"report"'))
    const out = existsSync(outFile) ? JSON.parse(readFileSync(outFile, 'utf8')) : { sandboxes: [], previewTokens: [] }
    result = { code, stdout, stderr, report: reportLine ? JSON.parse(reportLine).report : null, ...out }
  })

  test.after(async () => {
    await apiBackend?.stop()
    await jwtBackend?.stop()
    await git?.close()
    for (const h of homes) rmSync(h, { recursive: true, force: true })
  })

  const allSecrets = () => ({
    ...SECRETS,
    ...Object.fromEntries((result?.previewTokens ?? []).map((t, i) => [`previewToken${i}`, t])),
  })
  const findIn = (text) => Object.entries(allSecrets()).filter(([, v]) => String(text).includes(v)).map(([k]) => k)

  test('every operation ran in the child and no error or result holds a secret', { timeout: 300_000 }, () => {
    assert.equal(result.code, 0, `child exited with ${result.code}\n${result.stderr.slice(-4000)}`)
    assert.ok(result.report, `no report from the child:\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-4000)}`)
    const { counts, leaks } = result.report
    console.log(`secrets: ${counts.ok} operations succeeded, ${counts.failed} failed as asked, ${counts.checked} texts scanned`)
    assert.deepEqual(leaks, [])
    assert.ok(counts.ok >= 80 && counts.failed >= 35, JSON.stringify(counts))
    assert.ok(result.previewTokens.length >= 2, 'preview tokens were collected')
  })

  test('FORGE_LOG=debug printed the requests, and no output holds a secret', () => {
    const logLines = result.stderr.split('\n').filter((l) => l.startsWith('forge: '))
    assert.ok(logLines.length >= 100, `only ${logLines.length} debug lines`)
    assert.ok(logLines.some((l) => / 401 /.test(l)))
    assert.ok(logLines.some((l) => /DAYTONA_CONNECTION/.test(l)))
    assert.deepEqual(findIn(result.stdout), [], 'child stdout')
    assert.deepEqual(findIn(result.stderr), [], 'child stderr')
    const backendOut = apiBackend.output()
    assert.deepEqual(findIn(backendOut.replace(SECRETS.apiKey, '')), [], 'api backend output (its own --json line aside)')
    assert.deepEqual(findIn(jwtBackend.output().replace(SECRETS.jwt, '')), [], 'jwt backend output')
  })

  test('no file of the sandboxes and no cloned repository config holds a secret', () => {
    let files = 0
    for (const home of homes) {
      for (const id of result.sandboxes) {
        const dir = join(home, 'sandboxes', id)
        if (!existsSync(dir)) continue
        for (const f of walk(dir)) {
          files++
          const found = findIn(readFileSync(f)).filter((k) => !(f.endsWith('sandbox.json') && k.startsWith('previewToken')))
          assert.deepEqual(found, [], f)
        }
        for (const repo of ['workspace/repo', 'workspace/repo2']) {
          const gitDir = join(dir, 'root', 'home', 'daytona', repo)
          if (!existsSync(join(gitDir, '.git'))) continue
          // The repository is the sandbox user's: as root, git reads its config only when told
          // the folder is safe (else it silently lists nothing of it).
          const config = execFileSync('git', ['-c', 'safe.directory=*', '-C', gitDir, 'config', '--list', '--show-origin'], {
            encoding: 'utf8',
            env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: join(dir, 'root', 'home', 'daytona') },
          })
          assert.ok(config.includes('remote.origin.url=http://127.0.0.1'), config)
          assert.deepEqual(findIn(config), [], `${repo}: ${config}`)
        }
      }
    }
    assert.ok(files >= 20, `only ${files} files walked`)
  })
}
