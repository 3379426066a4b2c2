// What a sandbox looks like from inside, through the official @daytonaio/sdk, unchanged, against
// `forge local`: code written for Daytona (its own preview flow among it) runs as it does there.
// `pwd`, `whoami`, `$HOME`, bash features, a file uploaded to an absolute path read back by
// `cat`, and a node server started from a session serving a file it wrote, reached through the
// preview link both ways (the server reads the uploaded file; the file API reads the file the
// server wrote).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startForgeLocal } from '../crates/testkit/js/forge-local.mjs'

const { Daytona } = await import('@daytonaio/sdk')

let backend
let daytona

before(async () => {
  backend = await startForgeLocal()
  daytona = new Daytona({ apiKey: backend.apiKey, apiUrl: backend.apiUrl })
})

after(async () => {
  await backend.stop()
})

test('a sandbox is a Daytona sandbox from inside', { timeout: 120_000 }, async (t) => {
  const sandbox = await daytona.create({ public: false }, { timeout: 60 })
  try {
    const raw = await (await fetch(`${backend.apiUrl}/sandbox/${sandbox.id}`, { headers: { authorization: `Bearer ${backend.apiKey}` } })).json()
    assert.equal(raw.isolation.level, 'container', JSON.stringify(raw.isolation))
    const run = async (cmd) => {
      const r = await sandbox.process.executeCommand(cmd)
      assert.equal(r.exitCode, 0, `${cmd}: ${r.result}`)
      return r.result
    }
    assert.equal(await run('pwd'), '/home/daytona\n')
    assert.equal(await run('whoami'), 'daytona\n')
    assert.equal(await run('echo $HOME'), '/home/daytona\n')
    assert.equal(await run('echo {1..3}'), '1 2 3\n')
    assert.equal(await run('set -o pipefail; [[ -d /home/daytona ]] && echo yes'), 'yes\n')
    assert.equal(await sandbox.getUserHomeDir(), '/home/daytona')
    assert.equal(await sandbox.getWorkDir(), '/home/daytona')

    // A file uploaded to an absolute path is the file a command reads there.
    await sandbox.fs.uploadFile(Buffer.from('uploaded through the file API\n'), '/home/daytona/web/in.txt')
    assert.equal(await run('cat /home/daytona/web/in.txt'), 'uploaded through the file API\n')
    assert.equal(await run('stat -c %U /home/daytona/web/in.txt'), 'daytona\n')

    // A server started from a session serves it, and writes a file the file API reads back.
    const server = [
      "const http = require('http'), fs = require('fs')",
      "fs.writeFileSync('/home/daytona/web/out.txt', 'written by the server\\n')",
      "http.createServer((q, s) => s.end(fs.readFileSync('/home/daytona/web/in.txt'))).listen(3000)",
    ].join('\n')
    await sandbox.fs.uploadFile(Buffer.from(server), '/home/daytona/web/web.js')
    await sandbox.process.createSession('web')
    await sandbox.process.executeSessionCommand('web', { command: 'node /home/daytona/web/web.js', runAsync: true })
    const link = await sandbox.getPreviewLink(3000)
    let body = ''
    // Until the server answers (the test's timeout bounds the wait).
    while (body !== 'uploaded through the file API\n') {
      t.signal.throwIfAborted()
      const res = await fetch(link.url, { headers: { 'x-daytona-preview-token': link.token } }).catch(() => null)
      body = res && res.status === 200 ? await res.text() : ''
      if (!body) await new Promise((r) => setTimeout(r, 50))
    }
    assert.equal(body, 'uploaded through the file API\n')
    assert.equal((await sandbox.fs.downloadFile('/home/daytona/web/out.txt')).toString(), 'written by the server\n')
    // Relative paths of the file API are the work dir's, as a command's are.
    assert.equal((await sandbox.fs.downloadFile('web/out.txt')).toString(), 'written by the server\n')
  } finally {
    await sandbox.delete()
  }
})
