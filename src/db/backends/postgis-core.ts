/**
 * PostGIS for PGlite without the libraries we never load. @electric-sql/pglite-postgis ships one
 * bundle (postgis.tar.gz) holding three extensions' libraries — postgis-3.so (17 MB of
 * WebAssembly), postgis_raster-3.so (16 MB) and postgis_topology-3.so (15 MB) — and PGlite
 * compiles and instantiates every library of a bundle at every start, used or not. We create
 * only `postgis` (migration 0000), so two thirds of that work is wasted on each start.
 *
 * This module derives, once per installed bundle, a copy without the raster, topology, tiger
 * geocoder, SFCGAL and address-standardizer files, caches it in node_modules/.cache (shared by
 * every data directory, the tests' too) and hands PGlite that one through PostGIS's own
 * extension setup. Where the copy cannot be written (a read-only node_modules), PGlite gets the
 * full bundle: slower, the same database.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createGunzip, createGzip } from 'node:zlib'
import type { Extension } from '@electric-sql/pglite'
import { postgis } from '@electric-sql/pglite-postgis'
import tar from 'tar-stream'

/** Files of the other PostGIS extensions, which this server never creates. */
const UNUSED = /(raster|topology|tiger|sfcgal|address_standardizer)/i

const FULL_BUNDLE = fileURLToPath(new URL('./postgis.tar.gz', import.meta.resolve('@electric-sql/pglite-postgis')))

/** PostGIS as PGlite loads it, from the trimmed bundle when there is one. */
export const postgisCore: Extension = {
  name: 'postgis',
  async setup(pg, emscriptenOpts) {
    const setup = await postgis.setup(pg, emscriptenOpts)
    const trimmed = await trimmedBundle().catch(() => null)
    return trimmed ? { ...setup, bundlePath: pathToFileURL(trimmed) } : setup
  },
}

let making: Promise<string> | undefined

/** The trimmed bundle's path, made now if this installation has none yet. */
function trimmedBundle(): Promise<string> {
  making ??= (async () => {
    const full = await stat(FULL_BUNDLE)
    // Keyed by the full bundle's size and time: a reinstalled or upgraded package gets its own.
    const cacheDir = fileURLToPath(new URL('../../../.cache/open311-server/', pathToFileURL(FULL_BUNDLE)))
    const path = `${cacheDir}postgis-core-${full.size}-${Math.round(full.mtimeMs)}.tar.gz`
    if (await stat(path).then(() => true, () => false)) return path
    await mkdir(cacheDir, { recursive: true })
    // Written aside and renamed into place: processes starting together (test files) never read half a file.
    const draft = `${path}.${process.pid}`
    try {
      await writeTrimmed(draft)
      await rename(draft, path)
    } finally {
      await rm(draft, { force: true })
    }
    return path
  })()
  making.catch(() => (making = undefined))
  return making
}

async function writeTrimmed(target: string) {
  const extract = tar.extract()
  const pack = tar.pack()
  extract.on('entry', (header, stream, next) => {
    if (UNUSED.test(header.name)) {
      stream.on('end', next).resume()
      return
    }
    stream.pipe(pack.entry(header, next))
  })
  extract.on('finish', () => pack.finalize())
  // Level 1: PGlite unpacks it at every start; the copy's size matters less than its making.
  await Promise.all([
    pipeline(createReadStream(FULL_BUNDLE), createGunzip(), extract),
    pipeline(pack, createGzip({ level: 1 }), createWriteStream(target)),
  ])
}
