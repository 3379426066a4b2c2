// A real git smart-HTTP server for the Node tests: `git http-backend` run as a CGI behind basic
// auth, on 127.0.0.1. Every request without the right credentials gets 401.
import http from 'node:http'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const git = (cwd, ...args) =>
  execFileSync('git', args, {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Seed',
      GIT_AUTHOR_EMAIL: 'seed@example.com',
      GIT_COMMITTER_NAME: 'Seed',
      GIT_COMMITTER_EMAIL: 'seed@example.com',
    },
  }).toString()

/**
 * Starts a server holding `repo.git` with three commits on `main` and a `develop` branch.
 * Returns `{ url, repoUrl, root, requests, git, close }`; `requests` records each request's
 * method, URL and whether it was authorized.
 */
export async function gitServer({ username, password }) {
  const root = mkdtempSync(join(tmpdir(), 'forge-githttp-'))
  const work = join(root, 'seed')
  git(root, 'init', '-q', '-b', 'main', work)
  for (const [i, text] of ['one', 'two', 'three'].entries()) {
    writeFileSync(join(work, 'README.md'), `# seed\n${text}\n`)
    git(work, 'add', '.')
    git(work, 'commit', '-q', '-m', `commit ${i + 1}`)
  }
  git(work, 'branch', 'develop')
  git(root, 'clone', '-q', '--bare', work, join(root, 'repo.git'))

  // `username: null` accepts any user name with the right password (as GitHub does for tokens).
  const authorized = (header) => {
    if (!header?.startsWith('Basic ')) return false
    const [user, ...rest] = Buffer.from(header.slice(6), 'base64').toString().split(':')
    return rest.join(':') === password && (username == null || user === username)
  }
  const requests = []
  const server = http.createServer((req, res) => {
    const ok = authorized(req.headers.authorization)
    requests.push({ method: req.method, url: req.url, ok })
    if (!ok) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' })
      res.end('auth required')
      req.resume()
      return
    }
    const url = new URL(req.url, 'http://127.0.0.1')
    const env = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method,
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_USER: username ?? 'token',
      REMOTE_ADDR: '127.0.0.1',
    }
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length']
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding']
    if (req.headers['git-protocol']) env.GIT_PROTOCOL = req.headers['git-protocol']
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] })
    req.pipe(cgi.stdin)
    cgi.stdin.on('error', () => {})
    // CGI output: headers, a blank line, then the body.
    let head = Buffer.alloc(0)
    let started = false
    cgi.stdout.on('data', (chunk) => {
      if (started) {
        res.write(chunk)
        return
      }
      head = Buffer.concat([head, chunk])
      let end = head.indexOf('\r\n\r\n')
      let sep = 4
      if (end < 0) {
        end = head.indexOf('\n\n')
        sep = 2
      }
      if (end < 0) return
      started = true
      let status = 200
      const headers = {}
      for (const line of head.subarray(0, end).toString().split(/\r?\n/)) {
        const i = line.indexOf(':')
        if (i < 0) continue
        const k = line.slice(0, i).trim()
        const v = line.slice(i + 1).trim()
        if (k.toLowerCase() === 'status') status = parseInt(v, 10)
        else headers[k] = v
      }
      res.writeHead(status, headers)
      res.write(head.subarray(end + sep))
    })
    cgi.on('close', () => {
      if (!started) res.writeHead(500)
      res.end()
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    repoUrl: `${url}/repo.git`,
    root,
    requests,
    /** Runs git in the server's bare repository. */
    git: (...args) => git(join(root, 'repo.git'), ...args),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.()
        server.close(resolve)
      }),
  }
}
