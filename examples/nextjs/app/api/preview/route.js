import { NextResponse } from 'next/server'
import { createPreview, errorBody } from '../../../lib/previews.js'

// The addon is a Node.js native module: route handlers using it run on the Node.js runtime.
export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

/** POST { repoUrl, token?, branch? } → { projectId, sandboxId, previewUrl, framework, port, timings } */
export async function POST(request) {
  let body
  try {
    body = await request.json()
  } catch {
    return NextResponse.json({ error: { code: 'BAD_REQUEST', message: 'JSON body expected' } }, { status: 400 })
  }
  if (typeof body?.repoUrl !== 'string' || !body.repoUrl) {
    return NextResponse.json({ error: { code: 'BAD_REQUEST', message: 'repoUrl is required' } }, { status: 400 })
  }
  try {
    return NextResponse.json(await createPreview(body))
  } catch (e) {
    if (!e?.step) console.error('preview failed:', e) // a step failure is the caller's answer, anything else a bug
    return NextResponse.json(errorBody(e), { status: e?.step ? 422 : 500 })
  }
}
