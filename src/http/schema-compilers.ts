/**
 * Route schemas compiled once per distinct schema, not once per route. Fastify compiles every
 * route's validators (Ajv) and response serializers (fast-json-stringify) at start-up — each
 * GET twice, for its HEAD route too — and most of them are the same few schemas: the error
 * envelope of every status of every route, `jurisdiction_id` query strings, format params.
 * Ajv caches by schema object, not content, and fast-json-stringify caches nothing, so each
 * copy was compiled again. Here both are keyed by the schema's JSON text; equal text, equal
 * function (a compiled validator or serializer depends on nothing but its schema and the
 * shared schemas of its context, which each cache is scoped to).
 *
 * Kept fast path: warm start as `node dist/server.js`, median 2,230 ms against 2,382 ms without
 * (−6.4%, ten alternating starts, docs/benchmarks.md "Start time", 2026-12-06). Invariant: a
 * compiled function is reused only for a schema of the same JSON text, in the same app and
 * set of shared schemas.
 */
import { SerializerSelector, type SerializerFactory } from '@fastify/fast-json-stringify-compiler'
import type { FastifyServerOptions } from 'fastify'

function memoizedByText<T, R extends { schema?: unknown }>(compile: (route: R) => T): (route: R) => T {
  const compiled = new Map<string, T>()
  return (route) => {
    const key = JSON.stringify(route.schema)
    let fn = compiled.get(key)
    if (fn === undefined) {
      fn = compile(route)
      compiled.set(key, fn)
    }
    return fn
  }
}

/**
 * Fastify's default serializer factory, pooled and memoized: Fastify asks for a compiler in
 * every plugin context (two dozen here), each of which would compile the shared error
 * responses again. One compiler per set of shared schemas and options — as Fastify's Ajv
 * compiler already pools its validators — each memoized by schema text. Per app.
 */
export function pooledSerializers(): NonNullable<FastifyServerOptions['schemaController']> {
  const build: SerializerFactory = SerializerSelector()
  const pool = new Map<string, ReturnType<SerializerFactory>>()
  return {
    compilersFactory: {
      buildSerializer(externalSchemas, options) {
        const key = JSON.stringify([externalSchemas, options])
        let compiler = pool.get(key)
        if (compiler === undefined) {
          compiler = memoizedByText(build(externalSchemas, options))
          pool.set(key, compiler)
        }
        return compiler
      },
    },
  }
}

/** Ajv's onCreate: its compile memoized by schema text (Fastify's Ajv compiler, pooled per context). */
export function memoizeAjvCompile(ajv: { compile: (schema: object, meta?: boolean) => unknown }) {
  const original = ajv.compile.bind(ajv)
  const compile = memoizedByText((route: { schema: object }) => original(route.schema))
  ajv.compile = (schema, meta) => (meta ? original(schema, meta) : compile({ schema }))
}
