// Writes plain/<overlay>.yaml from overlays/<overlay> by following `resources:` (the only kustomize feature this
// tree uses), so `kubectl apply -f plain/…` and `kubectl apply -k overlays/…` create the same objects.
// Run after editing an overlay: node deploy/kubernetes/render.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';

const root = path.dirname(fileURLToPath(import.meta.url));
const render = (dir) => parseAllDocuments(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'))[0].toJSON().resources.flatMap((r) => {
  const p = path.join(dir, r);
  return r.endsWith('.yaml') ? parseAllDocuments(readFileSync(p, 'utf8')).map((d) => d.toJSON()) : render(p);
});
for (const overlay of ['sidecar', 'gateway']) {
  const header = `# Rendered from overlays/${overlay} (kubectl kustomize deploy/kubernetes/overlays/${overlay} gives the same): kubectl apply -f.\n# Regenerate after editing the overlay (node deploy/kubernetes/render.mjs); test/ops/kubernetes-manifests.test.ts checks they agree.\n`;
  writeFileSync(path.join(root, 'plain', `${overlay}.yaml`), header + render(path.join(root, 'overlays', overlay)).map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
}
