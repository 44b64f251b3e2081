/**
 * How a CLI process finds the server that holds an embedded database. PGlite is one process's
 * database (src/db/backends/data-dir-lock.ts), so while the server runs, the CLI asks the
 * server to run the command instead: the server listens on 127.0.0.1 on a port of its own and
 * writes that port and a random token to DATA_DIR/server-control.json, readable by its owner
 * only (0600). Reading that file is the credential: whoever can read it can read the database
 * files in the same directory anyway, so it grants nothing they lack. The file names the
 * port, never a host: the token only ever goes to the loopback interface.
 */
import { randomBytes } from 'node:crypto'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isAlive } from '../db/backends/data-dir-lock.js'

export interface ControlFile {
  pid: number
  port: number
  token: string
}

export const controlFilePath = (dataDir: string) => join(dataDir, 'server-control.json')

export const newControlToken = () => randomBytes(32).toString('base64url')

/** Writes the file whole or not at all, created 0600 (a rename over a file that existed keeps no older, wider mode). */
export async function writeControlFile(dataDir: string, control: ControlFile): Promise<void> {
  const path = controlFilePath(dataDir)
  const draft = `${path}.${process.pid}`
  await rm(draft, { force: true })
  await writeFile(draft, JSON.stringify(control), { mode: 0o600, flag: 'wx' })
  await rename(draft, path)
}

/** Removes the file if it is still this process's (a server started since has its own). */
export async function removeControlFile(dataDir: string, token: string): Promise<void> {
  const current = await readControlFile(dataDir)
  if (current?.token === token) await rm(controlFilePath(dataDir), { force: true })
}

/** The running server's control file; null when there is none, it is unreadable, or its process is gone. */
export async function readControlFile(dataDir: string): Promise<ControlFile | null> {
  const text = await readFile(controlFilePath(dataDir), 'utf8').catch(() => null)
  if (text === null) return null
  try {
    const value = JSON.parse(text) as Partial<ControlFile>
    const valid = Number.isInteger(value.pid) && Number.isInteger(value.port) && typeof value.token === 'string'
    return valid && isAlive(value.pid!) ? (value as ControlFile) : null
  } catch {
    return null
  }
}
