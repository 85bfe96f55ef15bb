import { randomBytes } from 'node:crypto';

/** The purpose bound into every wrap (AWS encryption context, Vault transit context): a blob wrapped for anything else does not unwrap here. */
export const WRAP_CONTEXT = 'keyswap-store-kek/v1';

/**
 * A key-management service that wraps and unwraps keyswap's store key (envelope encryption): the 32-byte key is
 * made locally, only its wrapped form is written. Implementations reject with an Error whose message says what
 * the KMS answered, never the key.
 */
export interface KeyWrapper {
  /** `aws_kms://…`, `vault_transit://…`: what the store header records, and what the config must name. */
  readonly uri: string;
  wrap(key: Buffer): Promise<string>;
  unwrap(wrapped: string): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * The store's key source when a KMS wraps it. The key in force is remembered once unwrapped (or made), so writes
 * do not call the KMS; `fresh()` starts over with a new key (a rekey).
 */
export class KmsKeySource {
  readonly kind = 'kms';
  readonly #wrapper: KeyWrapper;
  #current: { readonly wrapped: string; readonly key: Buffer } | null = null;
  readonly #opened = new Map<string, Buffer>();

  constructor(wrapper: KeyWrapper) {
    this.#wrapper = wrapper;
  }

  get uri(): string {
    return this.#wrapper.uri;
  }

  /** The key a new write uses: the one this store was opened with, else a new one wrapped now. */
  async current(): Promise<{ readonly wrapped: string; readonly key: Buffer }> {
    if (this.#current === null) {
      const key = randomBytes(32);
      this.#current = { wrapped: await this.#wrapper.wrap(key), key };
    }
    return this.#current;
  }

  /** The key a store header names, unwrapped by the KMS (once per wrapped form). */
  async open(wrapped: string): Promise<Buffer> {
    let key = this.#opened.get(wrapped);
    if (key === undefined) {
      key = await this.#wrapper.unwrap(wrapped);
      if (key.length !== 32) throw new Error(`${this.uri} unwrapped a ${key.length}-byte key, not 32`);
      this.#opened.set(wrapped, key);
    }
    this.#current ??= { wrapped, key };
    return key;
  }

  /** Forget the key in force: the next write makes and wraps a new one. */
  fresh(): void {
    this.#current = null;
  }

  close(): Promise<void> {
    return this.#wrapper.close();
  }
}
