import { NextResponse } from 'next/server'
import { deleteProject } from '../../../../lib/previews.js'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

/** DELETE: removes the project's sandbox ("always clean up", the guide's best practice 1). */
export async function DELETE(request, { params }) {
  const { projectId } = await params
  return NextResponse.json({ deleted: await deleteProject(projectId) })
}
