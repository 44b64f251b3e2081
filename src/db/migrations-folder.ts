import { fileURLToPath } from 'node:url'

/** `migrations/` at the package root, from both `src/db` (tsx) and `dist/db` (compiled). */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url))
