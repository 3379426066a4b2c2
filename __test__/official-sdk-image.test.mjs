// The official @daytonaio/sdk's declarative `Image` with local files (`addLocalFile`,
// `addLocalDir`) against `forge local`, unchanged: the SDK asks for object-storage push access,
// uploads each source as a tar with its own S3 client (AWS SDK v3: ListObjectsV2, PutObject, and
// the multipart upload a 6 MiB file takes) to the S3 endpoint the backend serves, and the build's
// COPY steps take the files from those uploads. Also: the endpoint refuses requests not signed
// with the credentials it issued.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync, rmSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { startForgeLocal } from '../crates/testkit/js/forge-local.mjs'
import { tempDir } from './helpers.mjs'

const { Daytona, Image } = await import('@daytonaio/sdk')
// The S3 client the SDK itself uses (its dependency), for the requests it must refuse.
const require = createRequire(new URL('../node_modules/@daytonaio/sdk/package.json', import.meta.url))
const { S3Client, PutObjectCommand, ListObjectsV2Command } = require('@aws-sdk/client-s3')

let backend
let daytona
let work
const made = []

before(async () => {
  backend = await startForgeLocal()
  daytona = new Daytona({ apiKey: backend.apiKey, apiUrl: backend.apiUrl })
  work = tempDir('sdk-image')
})

after(async () => {
  for (const s of made) await s.delete().catch(() => {})
  await backend.stop()
  rmSync(work, { recursive: true, force: true })
})

/** Every stored object under the backend's object storage: key → mtime (ms). */
function storedObjects() {
  const root = join(backend.home, 'object-storage', 'objects')
  const out = {}
  const walk = (dir, prefix) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const key = prefix ? `${prefix}/${e.name}` : e.name
      if (e.isDirectory()) walk(join(dir, e.name), key)
      else out[key] = statSync(join(dir, e.name)).mtimeMs
    }
  }
  walk(root, '')
  return out
}

test('an Image with addLocalFile and addLocalDir builds a snapshot whose sandboxes have the files', { timeout: 300_000 }, async () => {
  const config = join(work, 'config.txt')
  writeFileSync(config, 'from a local file\n')
  const site = join(work, 'site')
  mkdirSync(join(site, 'sub'), { recursive: true })
  writeFileSync(join(site, 'index.html'), '<h1>local dir</h1>\n')
  writeFileSync(join(site, 'sub', 'deep.txt'), 'deep inside\n')
  // Larger than the AWS SDK's 5 MiB part: uploaded as a multipart upload.
  const big = join(work, 'big.bin')
  const bigBytes = randomBytes(6 * 1024 * 1024 + 123)
  writeFileSync(big, bigBytes)
  const bigSha = createHash('sha256').update(bigBytes).digest('hex')

  const image = Image.base('node:22-bookworm')
    .addLocalFile(config, '/home/daytona/app/config.txt')
    .addLocalDir(site, '/home/daytona/site')
    .addLocalFile(big, '/home/daytona/data/')
    .runCommands(
      'cat /home/daytona/app/config.txt /home/daytona/site/sub/deep.txt > /home/daytona/combined.txt',
      'sha256sum /home/daytona/data/big.bin | cut -d" " -f1 > /home/daytona/big.sha',
    )
  const logs = []
  const snap = await daytona.snapshot.create({ name: 'with-local-files', image }, { onLogs: (l) => logs.push(l) })
  assert.equal(snap.state, 'active', logs.join(''))
  assert.match(logs.join(''), /Step COPY/)

  // Three contexts were uploaded, each once, named as the SDK names them.
  const stored = storedObjects()
  const keys = Object.keys(stored).sort()
  assert.equal(keys.length, 3, keys.join(', '))
  for (const k of keys) assert.match(k, /^local\/[0-9a-f]{32}\/context\.tar$/)

  const sandbox = await daytona.create({ snapshot: 'with-local-files' })
  made.push(sandbox)
  const run = async (cmd) => {
    const r = await sandbox.process.executeCommand(cmd)
    assert.equal(r.exitCode, 0, `${cmd}: ${r.result}`)
    return r.result
  }
  assert.equal(await run('cat /home/daytona/combined.txt'), 'from a local file\ndeep inside\n')
  assert.equal(await run('cat /home/daytona/site/index.html'), '<h1>local dir</h1>\n')
  assert.equal(await run('find /home/daytona/site -type f | sort'), '/home/daytona/site/index.html\n/home/daytona/site/sub/deep.txt\n')
  assert.equal((await run('cat /home/daytona/big.sha')).trim(), bigSha)
  assert.equal((await run('sha256sum /home/daytona/data/big.bin')).split(' ')[0], bigSha)
  // The build context is not part of the snapshot.
  assert.equal(await run('ls -A /tmp'), '')

  // The same sources again: the SDK finds them uploaded (ListObjectsV2) and uploads nothing.
  const again = Image.base('node:22-bookworm').addLocalFile(config, '/home/daytona/again.txt').addLocalDir(site, '/home/daytona/s2')
  const snap2 = await daytona.snapshot.create({ name: 'again', image: again })
  assert.equal(snap2.state, 'active')
  assert.deepEqual(storedObjects(), stored)
  const second = await daytona.create({ snapshot: 'again' })
  made.push(second)
  const r = await second.process.executeCommand('cat again.txt s2/sub/deep.txt')
  assert.equal(r.result, 'from a local file\ndeep inside\n')
})

test('a sandbox created from an Image with local files is built from it', { timeout: 300_000 }, async () => {
  const dir = join(work, 'direct')
  mkdirSync(join(dir, 'lib'), { recursive: true })
  writeFileSync(join(dir, 'lib', 'util.js'), 'module.exports = 6 * 7\n')
  const image = Image.base('node:22-bookworm')
    .addLocalDir(dir, '/home/daytona/proj')
    .env({ ANSWER_FILE: '/home/daytona/answer.txt' })
    .runCommands('node -e "require(\'fs\').writeFileSync(process.env.ANSWER_FILE, String(require(\'/home/daytona/proj/lib/util.js\')))"')
  const sandbox = await daytona.create({ image }, { timeout: 240 })
  made.push(sandbox)
  assert.equal(sandbox.state, 'started')
  const r = await sandbox.process.executeCommand('cat $ANSWER_FILE; echo; cat proj/lib/util.js')
  assert.equal(r.result, '42\nmodule.exports = 6 * 7\n')
})

test('a COPY of a file no context has fails the build and says which', { timeout: 120_000 }, async () => {
  const image = Image.base('node:22-bookworm').dockerfileCommands(['COPY /nowhere/missing.txt /home/daytona/x'])
  await assert.rejects(daytona.snapshot.create({ name: 'missing-source', image }), /missing\.txt/)
})

test('the S3 endpoint takes only requests signed with credentials the backend issued', { timeout: 60_000 }, async () => {
  const res = await fetch(`${backend.apiUrl}/object-storage/push-access`, { headers: { authorization: `Bearer ${backend.apiKey}` } })
  assert.equal(res.status, 200)
  const access = await res.json()
  assert.equal(access.bucket, 'daytona-volume-builds')
  const client = (over) =>
    new S3Client({
      region: access.region,
      endpoint: access.storageUrl,
      forcePathStyle: true,
      credentials: { accessKeyId: access.accessKey, secretAccessKey: access.secret, sessionToken: access.sessionToken, ...over },
    })
  const key = 'local/0123456789abcdef0123456789abcdef/context.tar'
  const put = (c) => c.send(new PutObjectCommand({ Bucket: access.bucket, Key: key, Body: Buffer.from('planted') }))
  const code = async (p) => p.then(() => 'ok', (e) => e.Code || e.name)

  assert.equal(await code(put(client({ secretAccessKey: 'not-the-secret' }))), 'SignatureDoesNotMatch')
  assert.equal(await code(put(client({ sessionToken: 'not-the-token' }))), 'InvalidToken')
  assert.equal(await code(put(client({ accessKeyId: 'FORGEMADEUP' }))), 'InvalidAccessKeyId')
  // The API key is not an S3 credential, and an unsigned request is refused.
  const bare = await fetch(`${access.storageUrl}/${access.bucket}/${key}`, { method: 'PUT', body: 'planted', headers: { authorization: `Bearer ${backend.apiKey}` } })
  assert.equal(bare.status, 403)
  assert.equal(Object.keys(storedObjects()).includes(key), false)
  // A body other than the one signed is refused (the signature covers its SHA-256).
  const signed = client({})
  signed.middlewareStack.add((next) => async (args) => {
    args.request.body = Buffer.from('swapped')
    return next(args)
  }, { step: 'finalizeRequest', priority: 'low' })
  assert.equal(await code(put(signed)), 'XAmzContentSHA256Mismatch')
  assert.equal(Object.keys(storedObjects()).includes(key), false)
  // The issued credentials work, and the object is listed.
  assert.equal(await code(put(client({}))), 'ok')
  const listed = await client({}).send(new ListObjectsV2Command({ Bucket: access.bucket, Prefix: 'local/0123456789abcdef0123456789abcdef/' }))
  assert.deepEqual(listed.Contents.map((c) => c.Key), [key])
  // A key outside plain segments is refused, and nothing is written outside the objects.
  assert.notEqual(await code(client({}).send(new PutObjectCommand({ Bucket: access.bucket, Key: 'local/../../escape', Body: 'x' }))), 'ok')
  assert.deepEqual(readdirSync(join(backend.home, 'object-storage')).sort(), ['objects', 'tmp', 'uploads'])
})
