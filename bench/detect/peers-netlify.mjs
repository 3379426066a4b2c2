// Runs @netlify/build-info (needs Node >= 22.12: started with the `node@22` npm package) on
// every project given in argv[3..]; argv[2] is the number of timed runs. Prints one JSON line:
// {dir: {answer: [{id, port, command}], medianMs}}.
import { Project } from '@netlify/build-info'
import { NodeFS } from '@netlify/build-info/node'

const runs = Number(process.argv[2])
const out = {}
const detect = async (dir) => {
  const project = new Project(new NodeFS(), dir, dir).setEnvironment({})
  return (await project.detectFrameworks()) ?? []
}
for (const dir of process.argv.slice(3)) {
  const found = await detect(dir)
  const times = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    await detect(dir)
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  out[dir] = {
    answer: found.map((f) => ({ id: f.id, port: f.dev?.port ?? null, command: f.dev?.command ?? null })),
    medianMs: times[Math.floor(times.length / 2)],
  }
}
console.log(JSON.stringify(out))
