// The git server of the Node git tests: the testkit's `git http-backend` behind basic auth on
// 127.0.0.1, seeded with a repository of three commits on `main` and a `develop` branch.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startGitHttp } from '../crates/testkit/js/forge-local.mjs'
import { tempDir } from './helpers.mjs'

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
 * `username: null` accepts any user name with the right password (as GitHub does for tokens).
 * Returns `{ url, repoUrl, root, git, close }`.
 */
export async function gitServer({ username, password }) {
  const root = tempDir('githttp')
  const work = join(root, 'seed')
  git(root, 'init', '-q', '-b', 'main', work)
  for (const [i, text] of ['one', 'two', 'three'].entries()) {
    writeFileSync(join(work, 'README.md'), `# seed\n${text}\n`)
    git(work, 'add', '.')
    git(work, 'commit', '-q', '-m', `commit ${i + 1}`)
  }
  git(work, 'branch', 'develop')
  git(root, 'clone', '-q', '--bare', work, join(root, 'repo.git'))

  const server = await startGitHttp(root, username, password)
  return {
    url: server.base,
    repoUrl: server.url('repo.git'),
    root,
    /** Runs git in the server's bare repository. */
    git: (...args) => git(join(root, 'repo.git'), ...args),
    close: server.close,
  }
}
