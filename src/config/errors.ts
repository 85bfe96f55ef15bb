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

/**
 * A file that decides what keyswap trusts (the config itself, `upstream.extra_ca_file`) that someone other than
 * its owner could change: refused like any config mistake, with the command that fixes it kept apart for `doctor`.
 */
export class LooseWriteAccessError extends ConfigError {
  constructor(file: string, line: number, field: string, readonly finding: string, readonly fix: string) {
    super(file, line, field, `${finding}; fix: ${fix}`);
  }
}
