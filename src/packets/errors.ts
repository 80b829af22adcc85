// The one error every packet decoder throws on malformed bytes, so callers can tell "not a packet we
// understand" (expected on a live wire) from a bug. No RFC; shared by the RFC 791/768/9293/792/7348 decoders.

export class DecodeError extends Error {
  readonly code = 'EDECODE';
  /** What was being decoded when it failed, e.g. 'ipv4 header'. */
  readonly what: string;
  /** Byte offset (within the buffer handed to the decoder) where the problem lies. */
  readonly offset: number;

  constructor(what: string, offset: number, reason: string) {
    super(`cannot decode ${what} at offset ${offset}: ${reason}`);
    this.name = 'DecodeError';
    this.what = what;
    this.offset = offset;
  }
}

/** Throws DecodeError unless `buf` holds `need` bytes from `offset`. */
export function need(buf: Uint8Array, offset: number, need: number, what: string): void {
  if (buf.length < offset + need) {
    throw new DecodeError(what, offset, `need ${need} bytes, have ${Math.max(0, buf.length - offset)}`);
  }
}
