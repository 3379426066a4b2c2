import { NextResponse } from 'next/server'
import { createPreview, errorBody } from '../../../lib/previews.js'
import { previewBody } from '../../../lib/request.js'

// The addon is a Node.js native module: route handlers using it run on the Node.js runtime.
export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

/** POST { repoUrl, token?, branch? } → { projectId, sandboxId, previewUrl, framework, port, timings } */
export async function POST(request) {
  const { body, error } = await previewBody(request)
  if (error) return error
  try {
    return NextResponse.json(await createPreview(body))
  } catch (e) {
    if (!e?.step) console.error('preview failed:', e) // a step failure is the caller's answer, anything else a bug
    return NextResponse.json(errorBody(e), { status: e?.step ? 422 : 500 })
  }
}
