// Run by third-party-clients.test.mjs inside a folder where the clients are installed:
// each client's documented calls against the backend named by DAYTONA_API_URL / _KEY.
// Prints one JSON object of what each saw (or the error it met).
const apiKey = process.env.DAYTONA_API_KEY
const apiUrl = process.env.DAYTONA_API_URL
const out = {}

async function probe(name, fn) {
  try {
    out[name] = await fn()
  } catch (e) {
    out[name] = { error: String(e?.stack || e) }
  }
}

await probe('mastra', async () => {
  const { DaytonaSandbox } = await import('@mastra/daytona')
  const sandbox = new DaytonaSandbox({ apiKey, apiUrl, language: 'typescript' })
  await sandbox.start()
  const cmd = await sandbox.executeCommand('bash', ['-c', 'echo hi; pwd'])
  const write = await sandbox.executeCommand('bash', ['-c', 'echo from mastra > /home/daytona/m.txt'])
  const read = await sandbox.executeCommand('cat', ['/home/daytona/m.txt'])
  const info = await sandbox.getInfo()
  await sandbox.destroy()
  return { cmd: cmd.stdout, exit: cmd.exitCode, write: write.exitCode, read: read.stdout, id: info?.id }
})

await probe('langchain', async () => {
  const { DaytonaSandbox } = await import('@langchain/daytona')
  const sandbox = await DaytonaSandbox.create({ auth: { apiKey, apiUrl } })
  const cmd = await sandbox.execute('echo hello; whoami')
  const up = await sandbox.uploadFiles([['/home/daytona/lc.txt', new TextEncoder().encode('from langchain\n')]])
  const read = await sandbox.execute('cat /home/daytona/lc.txt')
  const down = await sandbox.downloadFiles(['/home/daytona/lc.txt'])
  const id = sandbox.id
  await sandbox.kill()
  return {
    cmd: cmd.output,
    exit: cmd.exitCode,
    uploaded: up.map((u) => u.error),
    read: read.output,
    downloaded: new TextDecoder().decode(down[0]?.content ?? new Uint8Array()),
    id,
  }
})

await probe('computesdk', async () => {
  const { daytona } = await import('@computesdk/daytona')
  const compute = daytona({ apiKey, apiUrl })
  const sandbox = await compute.sandbox.create()
  const cmd = await sandbox.runCommand('echo computesdk')
  await sandbox.filesystem.writeFile('/home/daytona/c.txt', 'from computesdk\n')
  const read = await sandbox.runCommand('cat /home/daytona/c.txt')
  const listed = (await compute.sandbox.list()).length
  const id = sandbox.sandboxId
  await sandbox.destroy()
  return { cmd: cmd.stdout, exit: cmd.exitCode, read: read.stdout, listed, id }
})

console.log(JSON.stringify(out))
