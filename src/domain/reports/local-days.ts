/** Local calendar dates (YYYY-MM-DD) as reports and their rollups count them: plain date arithmetic, no time zone. */
export function shiftDays(day: string, n: number): string {
  const date = new Date(`${day}T00:00:00Z`)
  date.setUTCDate(date.getUTCDate() + n)
  return date.toISOString().slice(0, 10)
}

/** Whole days from `from` to `to` (0 for the same day). */
export const daysBetween = (from: string, to: string) => Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000)

export const earlierOf = (a: string, b: string) => (a < b ? a : b)

export const firstDayOfMonth = (day: string) => `${day.slice(0, 7)}-01`

/** The first day of the month `n` months from `firstDay`'s (itself a first day). */
export function shiftMonths(firstDay: string, n: number): string {
  const date = new Date(`${firstDay}T00:00:00Z`)
  date.setUTCMonth(date.getUTCMonth() + n)
  return date.toISOString().slice(0, 10)
}

export const lastDayOfMonth = (day: string) => shiftDays(shiftMonths(firstDayOfMonth(day), 1), -1)
