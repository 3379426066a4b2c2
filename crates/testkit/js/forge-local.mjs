// Node test helpers (dev-only): run `forge local` as a child process, and a git smart-HTTP
// server (`git http-backend` as CGI behind basic auth) on 127.0.0.1.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import http from 'node:http'

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

let built = null

/**
 * The `forge` binary: $FORGE_BIN as given; otherwise `cargo build -p forge-cli` is run once per
 * process (a no-op when up to date; `cargo test --workspace` does not build binaries) and
 * $CARGO_TARGET_DIR/debug/forge (else target/debug/forge) is used.
 */
export function forgeBin() {
  if (process.env.FORGE_BIN) return process.env.FORGE_BIN
  const bin = join(process.env.CARGO_TARGET_DIR || join(repoRoot, 'target'), 'debug', 'forge')
  if (built === null) {
    const r = spawnSync('cargo', ['build', '-q', '-p', 'forge-cli'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] })
    built = r.status === 0
  }
  if (!existsSync(bin)) throw new Error(`forge binary not found at ${bin} (cargo build -p forge-cli ${built ? 'ran' : 'failed'})`)
  return bin
}

/** Adds `port` to the host ports sandboxes of embedded backends started from here may reach. */
export function reachableFromSandboxes(port) {
  const ports = (process.env.FORGE_SANDBOX_HOST_PORTS || '').split(',').filter(Boolean)
  ports.push(String(port))
  process.env.FORGE_SANDBOX_HOST_PORTS = ports.join(',')
}

/**
 * Tells the domain-list proxies of embedded backends started from here where a name's
 * server is (FORGE_EGRESS_HOSTS, as for a local mirror): `{ 'allowed.test:80': port }` maps
 * to that port of 127.0.0.1. Sandboxes cannot change it.
 */
export function egressHosts(map) {
  const entries = (process.env.FORGE_EGRESS_HOSTS || '').split(',').filter(Boolean)
  for (const [name, port] of Object.entries(map)) entries.push(`${name}=127.0.0.1:${port}`)
  process.env.FORGE_EGRESS_HOSTS = entries.join(',')
}

/** An HTTP server on 127.0.0.1 answering every request with `name`, counting them (`hits`). */
export async function namedServer(name) {
  const s = { hits: 0 }
  s.http = http.createServer((req, res) => {
    s.hits += 1
    res.end(name)
  })
  await new Promise((resolve) => s.http.listen(0, '127.0.0.1', resolve))
  s.port = s.http.address().port
  s.close = () => new Promise((resolve) => s.http.close(resolve))
  return s
}

/**
 * Starts `forge local --json` on a fresh home and resolves with `{apiUrl, apiKey, home, stop}`
 * once it printed its JSON line. `stop()` sends SIGTERM and waits for a clean exit.
 */
export async function startForgeLocal() {
  const home = mkdtempSync(join(tmpdir(), 'forge-sdk-'))
  const child = spawn(forgeBin(), ['local', '--json', '--home', home], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('forge local did not start within 30 s')), 30_000)
    child.once('exit', (code) => reject(new Error(`forge local exited early with ${code}`)))
    lines.once('line', (line) => {
      clearTimeout(timer)
      try {
        resolve(JSON.parse(line))
      } catch (e) {
        reject(e)
      }
    })
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  return {
    ...info,
    home,
    async stop() {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      const result = await exited
      clearTimeout(timer)
      rmSync(home, { recursive: true, force: true })
      return result
    },
  }
}

const git = (cwd, args) =>
  execFileSync('git', ['-c', 'user.name=Forge Test', '-c', 'user.email=test@forge.invalid', '-c', 'commit.gpgsign=false', ...args], {
    cwd,
    env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' },
    encoding: 'utf8',
  }).trim()

/** Creates the bare repo `root/name` with one commit of `files` ({path: content}) on `branch`. */
export function createRepo(root, name, branch, files) {
  const bare = join(root, name)
  mkdirSync(bare, { recursive: true })
  git(bare, ['init', '--bare', '-q', '-b', branch])
  git(bare, ['config', 'http.receivepack', 'true'])
  addCommit(bare, branch, files, 'initial commit')
  return bare
}

/** Adds a commit writing `files` on `branch` of the bare repo; returns its hash. */
export function addCommit(bare, branch, files, message) {
  const work = mkdtempSync(join(tmpdir(), 'forge-git-work-'))
  try {
    git(work, ['init', '-q'])
    git(work, ['remote', 'add', 'origin', bare])
    git(work, ['fetch', '-q', 'origin'])
    const has = git(work, ['ls-remote', '--heads', 'origin', branch]) !== ''
    git(work, has ? ['checkout', '-q', '-b', branch, `origin/${branch}`] : ['checkout', '-q', '-b', branch])
    for (const [p, content] of Object.entries(files)) {
      mkdirSync(dirname(join(work, p)), { recursive: true })
      writeFileSync(join(work, p), content)
    }
    git(work, ['add', '-A'])
    git(work, ['commit', '-q', '--allow-empty', '-m', message])
    git(work, ['push', '-q', 'origin', `HEAD:refs/heads/${branch}`])
    return git(work, ['rev-parse', 'HEAD'])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** Reads a ref of a bare repo. */
export function revParse(bare, ref) {
  return git(bare, ['rev-parse', ref])
}

/**
 * A git smart-HTTP server on 127.0.0.1 serving the repos under `root` to basic auth
 * `username:password` (401 with a challenge otherwise). `username: null` accepts any user name
 * with the right password, as GitHub does for tokens. Resolves with
 * `{base, url(name), requests, close()}` (`requests`: `METHOD /path` of every authorised
 * request, in order).
 */
export async function startGitHttp(root, username, password) {
  const authorized = (header) => {
    if (!header?.startsWith('Basic ')) return false
    const [user, ...rest] = Buffer.from(header.slice(6), 'base64').toString().split(':')
    return rest.join(':') === password && (username == null || user === username)
  }
  const requests = [] // `${method} ${path}` of every authorised request, in order
  const server = http.createServer((req, res) => {
    if (!authorized(req.headers.authorization)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="forge-testkit"' })
      res.end('authentication required')
      req.resume()
      return
    }
    const u = new URL(req.url, 'http://x')
    requests.push(`${req.method} ${u.pathname}`)
    const env = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(u.pathname),
      QUERY_STRING: u.search.replace(/^\?/, ''),
      REQUEST_METHOD: req.method,
      CONTENT_TYPE: req.headers['content-type'] || '',
      REMOTE_USER: username ?? 'token',
      REMOTE_ADDR: '127.0.0.1',
      GATEWAY_INTERFACE: 'CGI/1.1',
    }
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding']
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length']
    if (req.headers['git-protocol']) env.GIT_PROTOCOL = req.headers['git-protocol']
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] })
    req.pipe(cgi.stdin)
    cgi.stdin.on('error', () => {})
    let head = Buffer.alloc(0)
    let headersDone = false
    cgi.stdout.on('data', (chunk) => {
      if (headersDone) return res.write(chunk)
      head = Buffer.concat([head, chunk])
      let sep = head.indexOf('\r\n\r\n')
      let sepLen = 4
      if (sep < 0) {
        sep = head.indexOf('\n\n')
        sepLen = 2
      }
      if (sep < 0) return
      headersDone = true
      let status = 200
      const headers = {}
      for (const line of head.subarray(0, sep).toString().split(/\r?\n/)) {
        const i = line.indexOf(':')
        if (i < 0) continue
        const name = line.slice(0, i).trim()
        const value = line.slice(i + 1).trim()
        if (name.toLowerCase() === 'status') status = parseInt(value, 10) || 500
        else headers[name] = value
      }
      res.writeHead(status, headers)
      res.write(head.subarray(sep + sepLen))
    })
    cgi.stdout.on('end', () => res.end())
    cgi.on('error', () => {
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  const base = `http://127.0.0.1:${port}`
  // Sandboxes of an embedded backend reach this machine's loopback only on ports they are
  // given: a backend started after this (in this process or a child) may reach this server.
  reachableFromSandboxes(port)
  return {
    base,
    url: (name) => `${base}/${name}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.()
        server.close(resolve)
      }),
  }
}

/**
 * package-lock.json of `files`' package.json, made by npm on this machine (no install, no
 * scripts), so that a test's or bench's app installs with `npm ci` as a real repository does.
 */
export function npmLockfile(files) {
  const dir = mkdtempSync(join(tmpdir(), 'forge-lock-'))
  try {
    writeFileSync(join(dir, 'package.json'), files['package.json'])
    execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
    return readFileSync(join(dir, 'package-lock.json'), 'utf8')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
