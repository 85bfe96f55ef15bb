
/*
 * A signature covers every header it signs, and some S3 headers name a resource other than the request's own
 * target: `PUT /bucket-a/copy` with `x-amz-copy-source: /bucket-b/secret` makes S3 read bucket-b's object with the
 * signer's rights. For policy, such a header is a request of its own: a GET of the resource it names, which the
 * binding must allow as it would allow that GET.
 */

/** Headers by which an S3 request names another object to read: CopyObject, UploadPartCopy, RenameObject. */
export const RESOURCE_HEADERS = ['x-amz-copy-source', 'x-amz-rename-source'] as const;

export interface NamedResource {
  readonly header: string;
  readonly host: string;
  readonly path: string;
}

/**
 * The resources a request's headers name, as the host and path a GET of each would go to, or 'unreadable' for a
 * value policy cannot place (an access point or Outposts ARN, a value that is not a bucket and key). S3 addressing:
 * path style (`/bucket/key` on the request's own host) unless the host is virtual-hosted (`bucket.s3…`), where the
 * source bucket becomes the first label of the host.
 */
export function namedResources(host: string, headers: readonly (readonly [string, string])[]): NamedResource[] | 'unreadable' {
  const out: NamedResource[] = [];
  for (const [name, value] of headers) {
    if (!(RESOURCE_HEADERS as readonly string[]).includes(name)) continue;
    const source = value.trim().split('?', 1)[0] ?? '';
    if (source.startsWith('arn:')) return 'unreadable';
    const path = source.startsWith('/') ? source : `/${source}`;
    const slash = path.indexOf('/', 1);
    if (slash < 2 || slash === path.length - 1) return 'unreadable';
    const virtual = /^[^.]+(\.s3[.-].+)$/.exec(host);
    out.push(virtual === null
      ? { header: name, host, path }
      : { header: name, host: `${path.slice(1, slash)}${virtual[1] as string}`, path: path.slice(slash) });
  }
  return out;
}
