// sandbox.fs from JS, with the integration guide's names, against the embedded backend over
// real HTTP: uploads (Buffer, Uint8Array, string, local file), downloads (Buffer, to disk,
// bulk with per-file errors), listing, details, folders, permissions, search, replace, move,
// delete.
import test from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync, existsSync, statSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { privateHome, sandboxBackend, tempDir } from './helpers.mjs'

privateHome('fs')
const backend = await sandboxBackend()
const { daytona } = backend
const local = tempDir('fs-local')
const sha = (b) => createHash('sha256').update(b).digest('hex')

let sandbox
test.before(async () => {
  sandbox = await daytona.create()
})
test.after(async () => {
  await sandbox?.delete()
  await backend.stop()
})

test('uploadFile from Buffer, Uint8Array, string and a local file; readFile / downloadFile give Buffers', async () => {
  const fs = sandbox.fs
  await fs.uploadFile(Buffer.from('Hello, World!', 'utf-8'), 'workspace/hello.txt')
  await fs.uploadFile(new Uint8Array([0, 1, 2, 255]), 'workspace/bytes.bin')
  await fs.uploadFile('plain string ✓', 'workspace/str.txt')
  const src = join(local, 'src.bin')
  const big = randomBytes(3 * 1024 * 1024 + 17)
  writeFileSync(src, big)
  await fs.uploadFile({ localPath: src }, 'workspace/deep/er/big.bin')

  const hello = await fs.readFile('workspace/hello.txt')
  assert.ok(Buffer.isBuffer(hello))
  assert.equal(hello.toString('utf-8'), 'Hello, World!')
  assert.deepEqual([...(await fs.downloadFile('workspace/bytes.bin'))], [0, 1, 2, 255])
  assert.equal((await fs.readFile('workspace/str.txt')).toString(), 'plain string ✓')
  assert.equal(sha(await fs.downloadFile('workspace/deep/er/big.bin')), sha(big))

  // Streamed to disk: no Buffer, the file complete, no .part left behind.
  const dest = join(local, 'out.bin')
  assert.equal(await fs.downloadFile('workspace/deep/er/big.bin', dest), undefined)
  assert.equal(sha(readFileSync(dest)), sha(big))
  assert.equal(existsSync(`${dest}.part`), false)

  // JSON written as in the guide reads back as JSON.
  const pkg = JSON.stringify({ name: 'my-app', version: '1.0.0' }, null, 2)
  await fs.uploadFile(Buffer.from(pkg), 'workspace/package.json')
  assert.deepEqual(JSON.parse((await fs.readFile('workspace/package.json')).toString('utf-8')), {
    name: 'my-app',
    version: '1.0.0',
  })
})

test('uploadFiles is one batch; downloadFiles reports a missing file per file', async () => {
  const fs = sandbox.fs
  const src = join(local, 'app.js')
  writeFileSync(src, 'console.log("App");')
  await fs.uploadFiles([
    { content: Buffer.from('<!DOCTYPE html>...'), path: 'site/index.html' },
    { content: 'body { margin: 0; }', path: 'site/styles.css' },
    { localPath: src, path: 'site/app.js' },
  ])
  const files = await fs.downloadFiles(['site/index.html', 'site/nope.txt', 'site/app.js', 'site/styles.css'])
  assert.deepEqual(
    files.map((f) => f.path),
    ['site/index.html', 'site/nope.txt', 'site/app.js', 'site/styles.css'],
  )
  assert.equal(files[0].content.toString(), '<!DOCTYPE html>...')
  assert.equal(files[2].content.toString(), 'console.log("App");')
  assert.equal(files[3].content.toString(), 'body { margin: 0; }')
  assert.equal(files[1].content, undefined)
  assert.equal(files[1].error.code, 'DAYTONA_NOT_FOUND')
  assert.equal(files[1].error.status, 404)
  assert.match(files[1].error.message, /nope\.txt/)

  await assert.rejects(fs.uploadFiles([{ path: 'x.txt' }]), { code: 'DAYTONA_INVALID_ARGUMENT' })
  await assert.rejects(fs.uploadFile({ localPath: join(local, 'missing') }, 'x.txt'), {
    code: 'DAYTONA_INVALID_ARGUMENT',
  })
  await assert.rejects(fs.readFile('site/nope.txt'), { code: 'DAYTONA_NOT_FOUND', status: 404 })
})

test('listFiles, getFileDetails, createFolder with mode, chmod and setFilePermissions', async () => {
  const fs = sandbox.fs
  await fs.createFolder('workspace/src/components', '755')
  await fs.createFolder('workspace/data', '700')
  await fs.uploadFile(Buffer.from('#!/bin/sh\necho hi\n'), 'workspace/script.sh')

  const list = await fs.listFiles('workspace')
  const byName = Object.fromEntries(list.map((f) => [f.name, f]))
  assert.equal(byName.src.isDir, true)
  assert.equal(byName['script.sh'].isDir, false)
  assert.equal(byName['script.sh'].size, 18)
  assert.match(byName['script.sh'].path, /(^|\/)workspace\/script\.sh$/)
  assert.ok(byName['script.sh'].modTime.length > 0)
  assert.ok(byName['script.sh'].modifiedAt.length > 0)
  for (const k of ['name', 'path', 'isDir', 'size', 'modTime', 'modifiedAt', 'mode', 'permissions', 'owner', 'group']) {
    assert.ok(k in byName['script.sh'], k)
  }
  assert.deepEqual(JSON.parse(JSON.stringify(list)), list)
  assert.match(byName.data.permissions, /^0?700$/)

  await fs.chmod('workspace/script.sh', '755')
  const d = await fs.getFileDetails('workspace/script.sh')
  assert.match(d.permissions, /^0?755$/)
  assert.equal(d.name, 'script.sh')
  const run = await sandbox.process.executeCommand('./workspace/script.sh')
  assert.equal(run.result, 'hi\n')
  await fs.setFilePermissions('workspace/script.sh', { mode: '640' })
  assert.match((await fs.getFileDetails('workspace/script.sh')).permissions, /^0?640$/)

  await assert.rejects(fs.createFolder('workspace/bad', '9z'), { code: 'DAYTONA_INVALID_ARGUMENT' })
  await assert.rejects(fs.listFiles('workspace/none'), { code: 'DAYTONA_NOT_FOUND' })
})

test('searchFiles searches contents; findFilesByName matches names; replaceInFile(s); moveFiles', async () => {
  const fs = sandbox.fs
  await fs.uploadFiles([
    { content: 'a\n// TODO: one\nb\n', path: 'proj/a.js' },
    { content: 'TODO two\n', path: 'proj/sub/b.ts' },
    { content: "fetch('http://localhost:3000/x')\n", path: 'proj/config.js' },
    { content: 'localhost:3000 and localhost:3000\n', path: 'proj/other.js' },
  ])
  const hits = await fs.searchFiles('proj', 'TODO')
  const got = hits.map((h) => [h.file.replace(/^.*proj\//, ''), h.line, h.content]).sort()
  assert.deepEqual(got, [
    ['a.js', 2, '// TODO: one'],
    ['sub/b.ts', 1, 'TODO two'],
  ])
  assert.deepEqual((await fs.findFiles('proj', 'TODO')).length, 2)
  const names = await fs.findFilesByName('proj', '*.ts')
  assert.equal(names.length, 1)
  assert.match(names[0], /proj\/sub\/b\.ts$/)

  await fs.replaceInFile('proj/config.js', 'localhost:3000', 'api.production.com')
  assert.equal((await fs.readFile('proj/config.js')).toString(), "fetch('http://api.production.com/x')\n")
  const r = await fs.replaceInFiles(['proj/other.js', 'proj/missing.js'], 'localhost:3000', 'h:1')
  const byFile = Object.fromEntries(r.map((x) => [x.file.replace(/^.*proj\//, ''), x]))
  assert.equal(byFile['other.js'].success, true)
  assert.equal(byFile['missing.js'].success, false)
  assert.ok(byFile['missing.js'].error)
  assert.equal((await fs.readFile('proj/other.js')).toString(), 'h:1 and h:1\n')
  await assert.rejects(fs.replaceInFile('proj/missing.js', 'a', 'b'))

  await fs.moveFiles('proj/sub', 'proj/moved')
  assert.equal((await fs.readFile('proj/moved/b.ts')).toString(), 'TODO two\n')
  await assert.rejects(fs.getFileDetails('proj/sub'), { code: 'DAYTONA_NOT_FOUND' })
})

test('deleteFile removes files and whole folders; deleteFiles tries every path', async () => {
  const fs = sandbox.fs
  await fs.uploadFiles([
    { content: '1', path: 'del/temp1.txt' },
    { content: '2', path: 'del/temp2.txt' },
    { content: '3', path: 'del/cache/a/b.txt' },
    { content: '4', path: 'del/node_modules/x/y.js' },
    { content: '5', path: 'del/keep.txt' },
  ])
  await fs.deleteFile('del/node_modules')
  await assert.rejects(fs.getFileDetails('del/node_modules'), { code: 'DAYTONA_NOT_FOUND' })
  await fs.deleteFiles(['del/temp1.txt', 'del/temp2.txt', 'del/cache'])
  assert.deepEqual((await fs.listFiles('del')).map((f) => f.name), ['keep.txt'])

  await fs.uploadFile('again', 'del/temp1.txt')
  await assert.rejects(fs.deleteFiles(['del/missing.txt', 'del/temp1.txt']), (e) => {
    assert.equal(e.code, 'DAYTONA_NOT_FOUND')
    assert.match(e.message, /1 of 2 paths failed: del\/missing\.txt/)
    return true
  })
  // The path after the failing one was still deleted.
  await assert.rejects(fs.getFileDetails('del/temp1.txt'), { code: 'DAYTONA_NOT_FOUND' })
})

test('paths stay inside the sandbox; aborts are typed', async () => {
  const fs = sandbox.fs
  // ../ never leaves the sandbox: this is the sandbox's own /etc/passwd, not this machine's.
  const passwd = (await fs.readFile('../../../../etc/passwd')).toString()
  assert.match(passwd, /^daytona:x:1000:1000:/m)
  assert.notEqual(passwd, readFileSync('/etc/passwd', 'utf8'))
  const ac = new AbortController()
  ac.abort()
  await assert.rejects(fs.readFile('workspace/hello.txt', ac.signal), { code: 'DAYTONA_ABORTED', name: 'AbortError' })
  await assert.rejects(fs.uploadFile('x', 'a.txt', ac.signal), { code: 'DAYTONA_ABORTED' })
})

test('confinement: ../, absolute paths and planted symlinks never reach outside the sandbox', async () => {
  const fs = sandbox.fs
  // A host folder outside every sandbox root, with a file only it holds.
  const outside = tempDir('outside')
  const secret = join(outside, 'secret.txt')
  const SECRET = 'host-only-content-7f3a'
  writeFileSync(secret, `${SECRET}\n`)
  // A name no call below ever writes: seeing it means the host folder was listed. (An
  // absolute path is the sandbox's own: writes to it create files inside the sandbox, which
  // a symlink to that path then reaches legitimately.)
  const MARKER = `marker-${process.pid}-${Date.now()}`
  writeFileSync(join(outside, MARKER), 'm')
  const mode = statSync(secret).mode
  const intact = () => {
    assert.equal(readFileSync(secret, 'utf-8'), `${SECRET}\n`)
    assert.equal(statSync(secret).mode, mode)
    assert.deepEqual(readdirSync(outside).sort(), [MARKER, 'secret.txt'].sort())
  }
  // Planted again before each kind of attempt (a delete or move may take the link itself).
  const plant = async () => {
    const ln = await sandbox.process.executeCommand(
      `rm -rf conf && mkdir -p conf && ln -s ${outside} conf/dirlink && ln -s ${secret} conf/filelink`,
    )
    assert.equal(ln.exitCode, 0, ln.result)
  }
  const up = '../'.repeat(12)
  const attempts = [
    ['../', `${up}${secret.slice(1)}`, `${up}${outside.slice(1)}`],
    ['absolute', secret, outside],
    ['symlink', 'conf/filelink', 'conf/dirlink'],
    ['through a symlinked folder', 'conf/dirlink/secret.txt', 'conf/dirlink'],
  ]
  const leaks = (v) => JSON.stringify(v ?? null).includes(SECRET) || (Buffer.isBuffer(v) && v.toString().includes(SECRET))
  for (const [how, file, dir] of attempts) {
    await plant()
    const tryIt = async (what, p) => {
      let value
      try {
        value = await p
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e
        assert.ok(!String(e.message).includes(SECRET), `${how}: ${what}`)
      }
      assert.ok(!leaks(value), `${how}: ${what} leaked the file`)
      intact()
    }
    await tryIt('readFile', fs.readFile(file))
    await tryIt('downloadFile', fs.downloadFile(file))
    await tryIt('downloadFiles', fs.downloadFiles([file]).then((r) => r.map((f) => f.content)))
    await tryIt('listFiles', fs.listFiles(dir).then((l) => assert.ok(!l.some((f) => f.name === MARKER), `${how}: listFiles`)))
    await tryIt('getFileDetails', fs.getFileDetails(file).then((d) => assert.notEqual(d.size, SECRET.length + 1, `${how}: details`)))
    await tryIt('searchFiles', fs.searchFiles(dir, SECRET))
    await tryIt('findFilesByName', fs.findFilesByName(dir, 'marker-*').then((l) => assert.deepEqual(l, [], `${how}: findFilesByName`)))
    await tryIt('uploadFile', fs.uploadFile('overwritten', file))
    await tryIt('uploadFiles', fs.uploadFiles([{ content: 'new', path: `${dir}/planted.txt` }]))
    await tryIt('replaceInFile', fs.replaceInFile(file, SECRET, 'replaced'))
    await tryIt('replaceInFiles', fs.replaceInFiles([file], SECRET, 'replaced'))
    await tryIt('chmod', fs.chmod(file, '777'))
    await tryIt('setFilePermissions', fs.setFilePermissions(file, { mode: '777' }))
    await tryIt('createFolder', fs.createFolder(`${dir}/newdir`, '755'))
    await tryIt('moveFiles', fs.moveFiles(file, 'conf/stolen.txt'))
    await tryIt('readFile of the move target', fs.readFile('conf/stolen.txt'))
    await tryIt('deleteFile', fs.deleteFile(file))
    await tryIt('deleteFiles', fs.deleteFiles([file, dir]))
  }
})
