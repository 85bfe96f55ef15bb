/**
 * The signing and OAuth libraries, loaded the first time a credential is minted or a request signed: most
 * deployments do neither, and loaded at start they cost every serve process about 5 MB (measured with jose,
 * oauth4webapi and the two @smithy packages on top of the rest). Each loads once; later calls share it.
 */
let jose: Promise<typeof import('jose')> | undefined;
let oauth: Promise<typeof import('oauth4webapi')> | undefined;
let sigv4: Promise<{ readonly SignatureV4: typeof import('@smithy/signature-v4').SignatureV4; readonly Hash: typeof import('@smithy/hash-node').Hash }> | undefined;

export const loadJose = (): Promise<typeof import('jose')> => (jose ??= import('jose'));
export const loadOauth = (): Promise<typeof import('oauth4webapi')> => (oauth ??= import('oauth4webapi'));
export const loadSigV4 = (): NonNullable<typeof sigv4> =>
  (sigv4 ??= Promise.all([import('@smithy/signature-v4'), import('@smithy/hash-node')]).then(([s, h]) => ({ SignatureV4: s.SignatureV4, Hash: h.Hash })));
