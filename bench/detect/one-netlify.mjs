// One whole process: load @netlify/build-info, detect argv[2], print the answer.
import { Project } from '@netlify/build-info'
import { NodeFS } from '@netlify/build-info/node'

const dir = process.argv[2]
const found = (await new Project(new NodeFS(), dir, dir).setEnvironment({}).detectFrameworks()) ?? []
console.log(JSON.stringify(found.map((f) => f.id)))
