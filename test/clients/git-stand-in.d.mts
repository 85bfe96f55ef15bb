/** One request the stand-in answered: which API, how it authenticated, and with which kind of key. */
export interface GitRequest {
  readonly api: 'git';
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly host: string | undefined;
  readonly via: 'none' | 'basic';
  readonly key: 'none' | 'real' | 'placeholder' | 'other';
  readonly status: number;
  readonly at: number;
}

export interface GitStandIn {
  readonly port: number;
  readonly requests: readonly GitRequest[];
  /** Basic credentials the server was given, decoded (`user:password`), one per request that carried them. */
  readonly credentials: readonly string[];
  close(): Promise<void>;
}

export declare function startGitStandIn(opts: {
  readonly tls: { readonly certPem: string; readonly keyPem: string };
  readonly key: { readonly real: string; readonly placeholder: string };
  /** Where the one repository is served, e.g. `repo.git`. */
  readonly repoPath: string;
  readonly readme: string;
}): Promise<GitStandIn>;
