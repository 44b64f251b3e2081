/** A JSON pointer (`/services/3/attributes/0`) as a readable field path (`services[3].attributes[0]`). */
export function toFieldPath(instancePath: string, property?: string): string {
  const path = instancePath
    .split('/')
    .filter(Boolean)
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '')
  return [path, property].filter(Boolean).join('.')
}
