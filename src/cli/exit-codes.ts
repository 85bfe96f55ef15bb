/** DESIGN.md §7: 0 ok, 1 runtime failure, 2 usage or config error. */
export const EXIT = { ok: 0, runtime: 1, usage: 2 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A user-facing failure: printed as `keyswap: <message>` with no stack, and mapped to an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(message: string, readonly exitCode: ExitCode) {
    super(message);
  }
}
