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

/** Keys remembered by their wrapped form (each write makes one). */
const KEYS_KEPT = 8;

/**
 * The store's key source when a KMS wraps it. Every write makes and wraps a new key (one KMS call per write): a key
 * read from the store is never written with again, so a store someone else wrapped (with only the right to encrypt)
 * is never extended under their key, and a rekey is not undone by a keyswap that opened the store before it.
 * Keys it unwrapped or made are remembered by their wrapped form.
 */
export class KmsKeySource {
  readonly kind = 'kms';
  readonly #wrapper: KeyWrapper;
  readonly #known = new Map<string, Buffer>();

  constructor(wrapper: KeyWrapper) {
    this.#wrapper = wrapper;
  }

  get uri(): string {
    return this.#wrapper.uri;
  }

  /** A new key for a write, wrapped now. */
  async fresh(): Promise<{ readonly wrapped: string; readonly key: Buffer }> {
    const key = randomBytes(32);
    const wrapped = await this.#wrapper.wrap(key);
    this.#remember(wrapped, key);
    return { wrapped, key };
  }

  /** The key a store header names, unwrapped by the KMS (once per wrapped form). */
  async open(wrapped: string): Promise<Buffer> {
    let key = this.#known.get(wrapped);
    if (key === undefined) {
      key = await this.#wrapper.unwrap(wrapped);
      if (key.length !== 32) throw new Error(`${this.uri} unwrapped a ${key.length}-byte key, not 32`);
      this.#remember(wrapped, key);
    }
    return key;
  }

  /** Every write makes a key: only the last few are kept (the store in force, and writes racing it). */
  #remember(wrapped: string, key: Buffer): void {
    this.#known.set(wrapped, key);
    for (const old of this.#known.keys()) {
      if (this.#known.size <= KEYS_KEPT) break;
      this.#known.delete(old);
    }
  }

  close(): Promise<void> {
    return this.#wrapper.close();
  }
}
