// One whole process: load @vercel/fs-detectors, detect argv[2], print the answer.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { detectFrameworkRecord, LocalFileSystemDetector } = require('@vercel/fs-detectors')
const { frameworkList } = require('@vercel/frameworks')

const r = await detectFrameworkRecord({ fs: new LocalFileSystemDetector(process.argv[2]), frameworkList })
console.log(JSON.stringify(r?.slug ?? null))
