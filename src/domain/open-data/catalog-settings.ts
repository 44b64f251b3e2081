/**
 * Who publishes the open data, under which licence, and whom to write to: what the catalogs
 * (data.json, datapackage.json) say about every feed. From the configuration (OPEN_DATA_*),
 * falling back on the jurisdiction's own record, so a server needs no setting to publish a
 * valid catalog when its jurisdiction's `contact` holds an email address.
 */
import type { AppConfig } from '../../config.js'
import { notFound } from '../errors.js'

/**
 * An email address that DCAT-US 1.1's `hasEmail` pattern accepts, narrowed so that, found in
 * free text, it stops before a trailing full stop or comma and never takes the `:` of "email:"
 * (the schema's local part also allows `~!$&'()*,;=:`, which no one puts in a public address).
 */
export const CONTACT_EMAIL = /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/

export interface CatalogSettings {
  license: string
  publisher: string
  contactEmail: string
}

/**
 * The settings for one jurisdiction's catalog. Without a contact address the catalog is not
 * published (404 naming the variable): DCAT-US requires `hasEmail`, and harvesters drop an
 * entry that lacks it silently, which is worse for an operator than a refusal they can see.
 */
export function catalogSettings(config: AppConfig['openData'], jurisdiction: { name: string; contact: string }): CatalogSettings {
  const contactEmail = config.contactEmail ?? CONTACT_EMAIL.exec(jurisdiction.contact)?.[0]
  if (!contactEmail) {
    throw notFound("the data catalog needs a contact email address: set OPEN_DATA_CONTACT_EMAIL, or put one in the jurisdiction's contact")
  }
  return { license: config.license, publisher: config.publisher ?? jurisdiction.name, contactEmail }
}
