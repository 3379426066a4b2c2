// The guide's Example 3, restart route: app/api/sandbox/restart/[projectId]/route.ts
import { NextResponse } from 'next/server'
import { errorBody, restartProject } from '../../../../../lib/previews.js'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

/** POST (optional JSON { token } for when the sandbox is gone and the repo must be cloned again). */
export async function POST(request, { params }) {
  const { projectId } = await params
  const body = await request.json().catch(() => ({}))
  try {
    const r = await restartProject(projectId, { token: body?.token })
    if (!r) return NextResponse.json({ error: 'Project not found' }, { status: 404 })
    return NextResponse.json({ success: true, ...r })
  } catch (e) {
    console.error('Restart error:', e.code, e.message)
    return NextResponse.json({ success: false, ...errorBody(e) }, { status: 500 })
  }
}
