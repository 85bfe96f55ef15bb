import { inspect } from 'node:util';

/**
 * A secret value. `reveal()` is the only way out: each call site is a line to review. Every other
 * conversion (string templates, JSON, util.inspect, pino) yields `[secret]`.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) { this.#value = value; }
  reveal(): string { return this.#value; }
  toString(): string { return '[secret]'; }
  toJSON(): string { return '[secret]'; }
  [inspect.custom](): string { return '[secret]'; }
}
