/**
 * PGlite keeps no lock of its own: two processes opening one data directory (the server and a
 * CLI command, say) would corrupt it. A lock file holding the owner's pid prevents that; a
 * lock left by a dead process is taken over.
 *
 * The file is created with its content in one step (write a private file, then `link` it into
 * place, which fails if the lock exists). A takeover re-reads the lock after a short pause and
 * backs off if another process took it meanwhile.
 */
import { link, readFile, rm, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'

export class DataDirInUseError extends Error {
  constructor(dataDir: string, pid: number | string) {
    super(
      `the embedded database in ${dataDir} is in use by process ${pid}, ` +
        'a server still starting (it runs CLI commands once it is ready) or another command; try again in a moment.',
    )
    this.name = 'DataDirInUseError'
  }
}

const TAKEOVER_SETTLE_MS = 100

export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  // Beside the directory, not in it: PostgreSQL wants its data directory to itself.
  const path = `${dataDir.replace(/\/+$/, '')}.lock`
  const mine = String(process.pid)
  const draft = `${path}.${process.pid}`
  await writeFile(draft, mine)
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(draft, path)
        if (attempt > 0) {
          await sleep(TAKEOVER_SETTLE_MS)
          const owner = await readOwner(path)
          if (owner !== mine) throw new DataDirInUseError(dataDir, owner ?? 'unknown')
        }
        return async () => {
          if ((await readOwner(path)) === mine) await rm(path, { force: true })
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        const owner = await readOwner(path)
        const pid = Number.parseInt(owner ?? '', 10)
        if (pid && pid !== process.pid && isAlive(pid)) throw new DataDirInUseError(dataDir, pid)
        // The owner is gone (or the file is unreadable junk): take the lock over.
        if ((await readOwner(path)) === owner) await rm(path, { force: true })
      }
    }
    throw new DataDirInUseError(dataDir, (await readOwner(path)) ?? 'unknown')
  } finally {
    await rm(draft, { force: true })
  }
}

async function readOwner(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch(() => null)
}

/** Whether a process with this id exists (EPERM: it does, as another user's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
