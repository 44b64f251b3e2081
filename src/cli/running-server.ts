/**
 * The CLI's side of control-file.ts: a command line for an embedded database that a running
 * server holds is run by that server, so `keys create` and the rest work while it serves.
 */
import { readControlFile } from './control-file.js'

export interface RemoteResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * Runs `argv` in the server that holds the embedded database under `dataDir`, with `cwd` as
 * its working directory; null when no server runs there or it stopped listening meanwhile (the
 * caller then opens the database itself).
 */
export async function runInRunningServer(dataDir: string, argv: string[], cwd: string): Promise<RemoteResult | null> {
  const control = await readControlFile(dataDir)
  if (!control) return null
  let response: Response
  try {
    response = await fetch(`http://127.0.0.1:${control.port}/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${control.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ argv, cwd }),
    })
  } catch {
    return null
  }
  const body = (await response.json().catch(() => null)) as Partial<RemoteResult> | { error?: string } | null
  if (response.status !== 200 || !body || !('code' in body)) {
    const reason = (body as { error?: string } | null)?.error ?? `HTTP ${response.status}`
    throw new Error(`the server running on this data directory (process ${control.pid}) refused the command: ${reason}`)
  }
  return { code: Number(body.code), stdout: String(body.stdout ?? ''), stderr: String(body.stderr ?? '') }
}
