/** multipart/form-data bodies as bytes, as citizen apps send photos with their reports. */
export type Part = { name: string; value: string } | { name: string; file: Buffer; filename: string; type: string }

const BOUNDARY = '----open311PhotoBoundary9f2c'
export const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`

/** A multipart body as bytes: file parts carry their filename and declared type. */
export function multipart(parts: Part[]): Buffer {
  const chunks: Buffer[] = []
  for (const part of parts) {
    const disposition = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.name}"`
    if ('file' in part) {
      chunks.push(Buffer.from(`${disposition}; filename="${part.filename}"\r\nContent-Type: ${part.type}\r\n\r\n`), part.file, Buffer.from('\r\n'))
    } else chunks.push(Buffer.from(`${disposition}\r\n\r\n${part.value}\r\n`))
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`))
  return Buffer.concat(chunks)
}

export const jpegPart = (file: Buffer, filename = 'IMG_7731.jpg'): Part => ({ name: 'media', file, filename, type: 'image/jpeg' })
