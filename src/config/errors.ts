/**
 * A user mistake in a config (or a file it names). The message is for humans and always names
 * `file:line: field: problem; what would be valid`. Never carries a secret value.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${field}: ${problem}`);
  }
}

/** Several ConfigErrors found in one pass: a user fixes them all at once rather than one per run. */
export class ConfigErrors extends Error {
  override readonly name = 'ConfigErrors';
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}
