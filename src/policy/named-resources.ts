
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

/** AWS S3 endpoints: path style is `s3[.-]…amazonaws.com`; anything before such a name is a bucket (dots allowed). */
const AWS_S3_ENDPOINT = /^s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?$/;
const AWS_S3_VIRTUAL = /^(.+)\.(s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?)$/;

/**
 * The resources a request's headers name, as the host and path a GET of each would go to, or 'unreadable' for a
 * value policy cannot place: an access point or Outposts ARN, a value that is not a bucket and key, or any host that
 * is not an AWS S3 endpoint. Only AWS's names say where the bucket is: path style (`s3.us-east-1.amazonaws.com/
 * bucket/key`) or virtual-hosted (`logs.bucket-a.s3.us-east-1.amazonaws.com`, the bucket everything before the
 * endpoint, dots and all). Other providers put the bucket in a label of their own choosing (`bucket.nyc3.
 * digitaloceanspaces.com`) or in the path (MinIO), and one shape cannot tell which: reading it wrong would decide a
 * copy from another bucket as a read of this one, so keyswap signs no copy there.
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
    if (AWS_S3_ENDPOINT.test(host)) {
      out.push({ header: name, host, path });
      continue;
    }
    const virtual = AWS_S3_VIRTUAL.exec(host);
    if (virtual === null) return 'unreadable';
    out.push({ header: name, host: `${path.slice(1, slash)}.${virtual[2] as string}`, path: path.slice(slash) });
  }
  return out;
}
