/**
 * The Open311 error descriptions of the GeoReport surface in the jurisdiction's other
 * languages (issue 16). The code that refuses a request writes its description in English, as
 * it always has (logs, the CLI and the admin API stay English); this table says each one in
 * French, by the shape of the English text: `{name}` stands for a part that is carried over
 * (an id, a field, a number). A description of the form `field: problem` keeps its field (a
 * parameter's name is the same in every language) and has its problem translated. What the
 * table does not know stays English, and the answer then says no Content-Language
 * (src/http/plugins/errors.ts), so a client is never told a text is French when it is not.
 * docs/open311.md (decision 26) lists what is covered.
 */

/** English template → French; every `{name}` of the English reappears in the French. */
type Table = readonly (readonly [string, string])[]

/** Whole descriptions. */
const FR_MESSAGES: Table = [
  ['jurisdiction_id "{id}" is not served here; served: {ids}', 'le jurisdiction_id "{id}" n\'est pas servi ici ; servis : {ids}'],
  ['jurisdiction_id "{id}" is not served here', 'le jurisdiction_id "{id}" n\'est pas servi ici'],
  ['no jurisdiction is configured on this server', 'aucune juridiction n\'est configurée sur ce serveur'],
  ['jurisdiction_id is required: this server serves several jurisdictions ({ids})', 'jurisdiction_id est obligatoire : ce serveur sert plusieurs juridictions ({ids})'],
  ['service_code "{code}" does not exist', 'le service_code "{code}" n\'existe pas'],
  ['service_request_id "{id}" does not exist', 'le service_request_id "{id}" n\'existe pas'],
  ['token "{token}" does not exist', 'le jeton "{token}" n\'existe pas'],
  ['token "{token}": the request was not accepted: {reason}', 'jeton "{token}" : la demande n\'a pas été acceptée : {reason}'],
  ['no resource at {what}; start at {first} or {second}', 'aucune ressource à {what} ; commencez par {first} ou {second}'],
  ['no resource at {what}; GeoReport URLs end in their format: {first} or {second}', 'aucune ressource à {what} ; les URL GeoReport se terminent par leur format : {first} ou {second}'],
  ['no resource at {what}', 'aucune ressource à {what}'],
  ['unknown format: use {first} or {second}', 'format inconnu : utilisez {first} ou {second}'],
  ['{method} is not allowed here; use {first} or {second}', '{method} n\'est pas permis ici ; utilisez {first} ou {second}'],
  ['{method} is not allowed here; use {allowed}', '{method} n\'est pas permis ici ; utilisez {allowed}'],
  ['api_key missing or not valid', 'api_key absente ou non valide'],
  ['rate limit exceeded: at most {max} POSTs per minute; retry in {after}', 'limite dépassée : au plus {max} POST par minute ; réessayez dans {after}'],
  ['request body is too large', 'le corps de la requête est trop volumineux'],
  [
    'channel: this API key may not set the channel (its requests are recorded as "{channel}"); a desk or operator key needs the {scope} scope',
    'channel : cette clé d\'API ne peut pas choisir le canal (ses demandes sont enregistrées comme "{channel}") ; une clé de guichet ou d\'opérateur doit avoir la portée {scope}',
  ],
  ['location: one of lat and long, address_string or address_id is required', 'location : lat et long, address_string ou address_id est obligatoire'],
]

/** The problem of a `field: problem` description. */
const FR_PROBLEMS: Table = [
  ['is required', 'est obligatoire'],
  ['is not a known field', 'n\'est pas un champ connu'],
  ['only one value is allowed', 'une seule valeur est permise'],
  ['takes a single value', 'n\'accepte qu\'une seule valeur'],
  ['lat and long must be sent together', 'lat et long doivent être envoyés ensemble'],
  ['all three are needed for a radius search', 'les trois sont nécessaires pour une recherche par rayon'],
  ['must be at most {n} characters', 'doit compter au plus {n} caractères'],
  ['must be an http or https URL', 'doit être une URL http ou https'],
  ['is not an email address', 'n\'est pas une adresse électronique'],
  ['must be a decimal number of degrees', 'doit être un nombre décimal de degrés'],
  ['must be a decimal number', 'doit être un nombre décimal'],
  ['must be a whole number', 'doit être un nombre entier'],
  ['must be between {min} and {max}', 'doit être compris entre {min} et {max}'],
  ['{values} is not one of the listed keys', '{values} ne fait pas partie des clés proposées'],
  ['must be a W3C datetime such as {example}', 'doit être une date et heure W3C, par exemple {example}'],
  ['must be later than {other}', 'doit être postérieur à {other}'],
  ['a date range may span at most {n} days', 'une période peut couvrir au plus {n} jours'],
  ['a window may span at most {n} days', 'une fenêtre peut couvrir au plus {n} jours'],
  ['at most {n} ids', 'au plus {n} identifiants'],
  ['"{value}" is not open or closed', '"{value}" n\'est ni open ni closed'],
  ['"{value}" is not one of {allowed}', '"{value}" ne fait pas partie de {allowed}'],
  ['must be min_long,min_lat,max_long,max_lat', 'doit être min_long,min_lat,max_long,max_lat'],
  ['min values must be below max values', 'les valeurs min doivent être inférieures aux valeurs max'],
  ['at most {n} degrees on a side', 'au plus {n} degrés de côté'],
  ['{value} is not a language tag (BCP 47, such as en, fr or fr-CA)', '{value} n\'est pas une étiquette de langue (BCP 47, par exemple en, fr ou fr-CA)'],
  ['must be 1–255 printable ASCII characters', 'doit compter de 1 à 255 caractères ASCII imprimables'],
  ['a comment needs text or a media_url', 'un commentaire demande un texte ou un media_url'],
  ['a photo may be at most {size}', 'une photo peut peser au plus {size}'],
  // Schema validation's words (ajv's messages, as src/http/plugins/errors.ts passes them on).
  ['must be string', 'doit être du texte'],
  ['must be boolean', 'doit être true ou false'],
  ['must be integer', 'doit être un nombre entier'],
  ['must be number', 'doit être un nombre'],
  ['must NOT have more than {n} characters', 'doit compter au plus {n} caractères'],
  ['must NOT have fewer than {n} characters', 'doit compter au moins {n} caractères'],
  ['must be equal to one of the allowed values', 'doit être l\'une des valeurs permises'],
  ['must match pattern {pattern}', 'doit correspondre au motif {pattern}'],
]

interface Compiled {
  pattern: RegExp
  names: string[]
  into: string
}

function compile(table: Table): Compiled[] {
  return table.map(([english, into]) => {
    const names: string[] = []
    const source = english
      .split(/(\{[a-z]+\})/)
      .map((part) => {
        const name = /^\{([a-z]+)\}$/.exec(part)?.[1]
        if (!name) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        names.push(name)
        return '(.+?)'
      })
      .join('')
    // A slip in the table fails at start-up, not in some client's error answer.
    for (const [, name] of into.matchAll(/\{([a-z]+)\}/g)) {
      if (!names.includes(name!)) throw new Error(`error-messages: {${name}} of ${JSON.stringify(into)} is not in ${JSON.stringify(english)}`)
    }
    return { pattern: new RegExp(`^${source}$`, 's'), names, into }
  })
}

const FRENCH = { messages: compile(FR_MESSAGES), problems: compile(FR_PROBLEMS) }

/** ms's long form (what the rate limiter says), in French. */
const FR_DURATIONS: Record<string, string> = { ms: 'ms', second: 's', minute: 'min', hour: 'h', day: 'j' }

function fill(entry: Compiled, text: string): string | undefined {
  const found = entry.pattern.exec(text)
  if (!found) return undefined
  return entry.into.replace(/\{([a-z]+)\}/g, (_whole, name: string) => {
    const value = found[entry.names.indexOf(name) + 1]!
    if (name === 'after') return value.replace(/^(\d+) ?(ms|second|minute|hour|day)s?$/, (_d, n: string, unit: string) => `${n} ${FR_DURATIONS[unit]}`)
    return value
  })
}

/** `description` in `locale`, or undefined when the table does not know it. */
export function translateErrorDescription(description: string, locale: string): string | undefined {
  const language = locale.toLowerCase().split('-', 1)[0]
  if (language === 'en') return description
  if (language !== 'fr') return undefined
  for (const entry of FRENCH.messages) {
    const translated = fill(entry, description)
    if (translated !== undefined) return translated
  }
  // `field: problem` — the field is a parameter's name, the same in every language.
  const colon = description.indexOf(': ')
  if (colon < 0) return undefined
  const problem = description.slice(colon + 2)
  for (const entry of FRENCH.problems) {
    const translated = fill(entry, problem)
    if (translated !== undefined) return `${description.slice(0, colon)} : ${translated}`
  }
  return undefined
}
